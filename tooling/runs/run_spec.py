"""What a run is, whichever cluster it runs on: the load (its shape, with the variables the
command line read from the environment) and where its record goes. The commands build these
from their flags; nothing below them reads the environment."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tooling.errors import UserError
from tooling.loadgen.load_shapes import Shape, shape_from_spec, shape_seconds, think_seconds
from tooling.paths import LAB_VALUES
from tooling.runs.locust_load import LocustSettings

LOCUST_MARGIN_SECONDS = 60  # Locust's --run-time past the shape's end (the shape ends it first)
LOAD_SOURCES = ("locust", "model")


@dataclass(frozen=True)
class LoadSpec:
    """The load: a shape, its variables (STEP_*, RAMP_*, SPIKE_*, WAIT_MIN/MAX, as given to
    the command), STEP_SECONDS from --step-seconds, Locust's workers, and in the rehearsal
    its source: real Locust on the replica fleet, or the load `model`."""

    shape: str = "step"
    step_seconds: float | None = None
    workers: int = 2
    source: str = "locust"
    variables: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise UserError("--workers must be at least 1")
        if self.source not in LOAD_SOURCES:
            raise UserError(f"--load {self.source!r}: use {' or '.join(LOAD_SOURCES)}")
        try:
            think_seconds(self.variables)
        except ValueError as error:
            raise UserError(f"the users' wait: {error}") from error

    @property
    def think_seconds(self) -> float:
        """Each user's mean wait between requests (WAIT_MIN, WAIT_MAX)."""
        return think_seconds(self.variables)

    def environment(self, default_step_seconds: float | None = None) -> dict[str, str]:
        """The variables for Locust: those given, then --step-seconds, then the default."""
        environment = dict(self.variables)
        if self.step_seconds:
            environment["STEP_SECONDS"] = f"{self.step_seconds:g}"
        elif default_step_seconds and "STEP_SECONDS" not in environment:
            environment["STEP_SECONDS"] = f"{default_step_seconds:g}"
        return environment

    def schedule(self, default_step_seconds: float | None = None) -> Shape:
        try:
            return shape_from_spec(self.shape, self.environment(default_step_seconds))
        except (ValueError, OSError) as error:
            raise UserError(f"--shape {self.shape}: {error}") from error

    def locust_settings(self, default_step_seconds: float | None = None) -> LocustSettings:
        """The Locust chart's run for this load; a bad shape fails here, before anything is
        made. --run-time bounds it a margin past the shape's end."""
        shape = self.schedule(default_step_seconds)
        run_time = f"{math.ceil(shape_seconds(shape)) + LOCUST_MARGIN_SECONDS}s"
        environment = self.environment(default_step_seconds)
        if self.shape.startswith("file:"):
            csv_text = Path(self.shape.removeprefix("file:")).read_text()
            return LocustSettings("file", environment, csv_text, self.workers, run_time)
        return LocustSettings(self.shape, environment, "", self.workers, run_time)


@dataclass(frozen=True)
class RunSpec:
    """What runs on the cluster, where its record goes, and whether the cluster (and what was
    made for it) is deleted at the end."""

    run_dir: Path
    load: LoadSpec = field(default_factory=LoadSpec)
    values_files: tuple[Path, ...] = (LAB_VALUES,)
    model_uri: str = ""  # gs://… or https://….tar.gz where real pods read it (kind, GKE)
    down: bool = False
