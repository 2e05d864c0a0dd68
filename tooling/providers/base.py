"""What every kind of cluster offers the commands: a typed description of the cluster and of the
run, and one Provider interface (create, credentials, delete, the story's target)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from tooling.errors import UserError
from tooling.loadgen.load_shapes import (
    SHAPE_VARIABLES,
    Shape,
    shape_from_spec,
    think_seconds,
    wait_environment,
)
from tooling.runs.story import LAB_VALUES, StoryTarget

Say = Callable[[str], None]
DEFAULT_KUBECONFIG = Path("runs/cluster/kubeconfig")


@dataclass(frozen=True)
class ClusterSpec:
    """A cluster, whichever provider makes it (fields a provider has no use for are ignored)."""

    provider: str = "rehearsal"
    name: str = ""  # empty: the provider's default name
    kubeconfig: Path = DEFAULT_KUBECONFIG
    min_nodes: int = 1
    max_nodes: int = 3
    autoscaling_profile: str = "balanced"  # GKE's; the rehearsal maps it onto its autoscaler
    profile: str = "fast"  # rehearsal: fast or lab timings
    node_autoscaler: str = "auto"  # rehearsal: auto, cluster-autoscaler or stand-in
    project: str = ""  # gke
    location: str = ""  # gke: zone or region
    machine_type: str = "e2-standard-4"  # gke


@dataclass(frozen=True)
class LoadSpec:
    """The load: a shape (its variables from the environment, STEP_SECONDS from the flag)."""

    shape: str = "step"
    step_seconds: float | None = None
    workers: int = 2
    source: str = "locust"  # rehearsal: real Locust on the replica fleet, or the load `model`

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise UserError("--workers must be at least 1")
        if self.source not in ("locust", "model"):
            raise UserError(f"--load {self.source!r}: use locust or model")
        try:
            think_seconds()
        except ValueError as error:
            raise UserError(f"the users' wait: {error}") from error

    def environment(self, default_step_seconds: float | None = None) -> dict[str, str]:
        """The shape's variables and the users' wait (WAIT_MIN, WAIT_MAX): the environment's,
        then --step-seconds, then the default."""
        environment = {key: os.environ[key] for key in SHAPE_VARIABLES if key in os.environ}
        environment.update(wait_environment())
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


@dataclass(frozen=True)
class RunSpec:
    """What `up` (and `rehearse`) runs on the cluster, and what happens to it afterwards."""

    run_dir: Path
    load: LoadSpec = field(default_factory=LoadSpec)
    values_files: tuple[Path, ...] = (LAB_VALUES,)
    model_uri: str = ""  # gs://… or https://….tar.gz; gke: empty exports and uploads it
    bucket: str = ""  # gke: default PROJECT-resnet-serving
    weights: str = "random"  # gke: the exported model's weights
    down: bool = False  # delete the cluster (and the uploaded model) at the end


class Provider(Protocol):
    name: str
    default_cluster_name: str

    def create(self, cluster: ClusterSpec, say: Say) -> Path:
        """Creates (or reuses) the cluster; returns the kubeconfig written."""

    def credentials(self, cluster: ClusterSpec, say: Say) -> Path:
        """Writes the kubeconfig of an existing cluster."""

    def delete(self, cluster: ClusterSpec, say: Say) -> None: ...

    def story_target(
        self, cluster: ClusterSpec, run: RunSpec, say: Say
    ) -> contextlib.AbstractContextManager[StoryTarget]:
        """The cluster made ready for the story (created, the model where pods read it)."""

    def uploaded_model(self, cluster: ClusterSpec, run: RunSpec) -> str | None:
        """Where `up` put the model for the pods (`down` deletes it), or None."""

    def delete_uploaded_model(self, cluster: ClusterSpec, run: RunSpec, say: Say) -> None: ...

    def plan(self, cluster: ClusterSpec, run: RunSpec) -> list[str]:
        """What `up` would create, without calling anything (`up --dry-run`)."""


def cluster_name(cluster: ClusterSpec, provider: Provider) -> str:
    return cluster.name or provider.default_cluster_name
