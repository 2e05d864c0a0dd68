"""Load shapes as pure functions of time: users at second t, or None once the run is over.

Pure Python with no Locust import, so the rehearsal's load model and the report can use the
same schedules as the locustfile. The locustfile imports this module as a sibling file (the
Locust chart mounts both files side by side).
"""

from __future__ import annotations

import csv
import itertools
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

UsersAt = Callable[[float], "int | None"]


@dataclass(frozen=True)
class StepShape:
    """The lab's StepLoad: start at `step_users`, add `step_users` every `step_seconds`."""

    step_users: int = 2
    step_seconds: float = 60.0
    steps: int = 11

    def users_at(self, t: float) -> int | None:
        if t >= self.steps * self.step_seconds:
            return None
        return self.step_users * (int(t // self.step_seconds) + 1)


@dataclass(frozen=True)
class RampShape:
    """A straight line from `start_users` to `peak_users` over `seconds`."""

    start_users: int = 1
    peak_users: int = 22
    seconds: float = 600.0

    def users_at(self, t: float) -> int | None:
        if t >= self.seconds:
            return None
        return round(self.start_users + (self.peak_users - self.start_users) * t / self.seconds)


@dataclass(frozen=True)
class SpikeShape:
    """`base_users`, then `spike_users` from `spike_start` for `spike_seconds`, then base again;
    Locust starts (and stops) users at `spawn_rate` per second as it jumps (20 → 75 users in
    under 6 s at 10/s)."""

    base_users: int = 2
    spike_users: int = 20
    spike_start: float = 120.0
    spike_seconds: float = 120.0
    seconds: float = 480.0
    spawn_rate: float = 10.0

    def users_at(self, t: float) -> int | None:
        if t >= self.seconds:
            return None
        in_spike = self.spike_start <= t < self.spike_start + self.spike_seconds
        return self.spike_users if in_spike else self.base_users


@dataclass(frozen=True)
class FileShape:
    """Rows of `seconds,users`: each sets the user count from that second on; the last ends it."""

    rows: tuple[tuple[float, int], ...]

    @classmethod
    def read(cls, path: str | Path) -> FileShape:
        with open(path, newline="") as handle:
            reader = csv.DictReader(handle)
            if reader.fieldnames is None or [f.strip() for f in reader.fieldnames] != [
                "seconds",
                "users",
            ]:
                raise ValueError(f"{path}: the header must be 'seconds,users'")
            rows = []
            for line, row in enumerate(reader, start=2):
                try:
                    rows.append((float(row["seconds"]), int(row["users"])))
                except (TypeError, ValueError) as error:
                    raise ValueError(f"{path}:{line}: expected seconds,users numbers") from error
        if not rows:
            raise ValueError(f"{path}: no rows after the header")
        if any(later[0] <= earlier[0] for earlier, later in itertools.pairwise(rows)):
            raise ValueError(f"{path}: seconds must increase from row to row")
        if any(users < 0 for _, users in rows):
            raise ValueError(f"{path}: users must not be negative")
        return cls(tuple(rows))

    def users_at(self, t: float) -> int | None:
        if t >= self.rows[-1][0]:
            return None
        users = 0
        for start, count in self.rows:
            if t < start:
                break
            users = count
        return users


Shape = StepShape | RampShape | SpikeShape | FileShape
SHAPE_NAMES = ("step", "ramp", "spike", "file:PATH")
# Each shape's name and the environment variable of each of its fields (as shape_from_spec reads;
# `--help` lists them with their defaults).
SHAPE_FIELDS: dict[type, tuple[str, dict[str, str]]] = {
    StepShape: (
        "step",
        {"STEP_USERS": "step_users", "STEP_SECONDS": "step_seconds", "STEPS": "steps"},
    ),
    RampShape: (
        "ramp",
        {
            "RAMP_START_USERS": "start_users",
            "RAMP_PEAK_USERS": "peak_users",
            "RAMP_SECONDS": "seconds",
        },
    ),
    SpikeShape: (
        "spike",
        {
            "SPIKE_BASE_USERS": "base_users",
            "SPIKE_USERS": "spike_users",
            "SPIKE_START": "spike_start",
            "SPIKE_SECONDS": "spike_seconds",
            "SPIKE_TOTAL_SECONDS": "seconds",
            "SPIKE_SPAWN_RATE": "spawn_rate",
        },
    ),
}
# The environment variables that tune the shapes (see shape_from_spec).
SHAPE_VARIABLES = tuple(variable for _, fields in SHAPE_FIELDS.values() for variable in fields)
# How long each user waits between requests (the locustfile's; the lab's between(0.8, 0.9)).
WAIT_VARIABLES = ("WAIT_MIN", "WAIT_MAX")
WAIT_DEFAULTS = {"WAIT_MIN": 0.8, "WAIT_MAX": 0.9}


LOAD_VARIABLES = SHAPE_VARIABLES + WAIT_VARIABLES


def load_variables(environ: Mapping[str, str]) -> dict[str, str]:
    """The shapes' variables and the users' wait that `environ` sets (read once, where the
    command line is parsed; Locust's processes and pods are given them)."""
    return {key: environ[key] for key in LOAD_VARIABLES if environ.get(key)}


def think_seconds(environ: Mapping[str, str]) -> float:
    """A user's mean wait between requests: (WAIT_MIN + WAIT_MAX) / 2, as Locust's between()."""
    bounds = []
    for name in WAIT_VARIABLES:
        raw = environ.get(name, "")
        try:
            bounds.append(float(raw) if raw else WAIT_DEFAULTS[name])
        except ValueError as error:
            raise ValueError(f"{name}={raw!r} is not a number") from error
    if not 0 <= bounds[0] <= bounds[1]:
        raise ValueError(f"WAIT_MIN={bounds[0]:g} and WAIT_MAX={bounds[1]:g}: need 0 ≤ MIN ≤ MAX")
    return sum(bounds) / 2


def shape_seconds(shape: Shape, limit: float = 6 * 3600) -> float:
    """How long the shape runs: its first whole second with no users left (at most `limit`)."""
    t = 0.0
    while t < limit and shape.users_at(t) is not None:
        t += 1.0
    return t


def shape_from_spec(spec: str, environ: Mapping[str, str] | None = None) -> Shape:
    """Builds a shape from its name (`step`, `ramp`, `spike`, `file:PATH`) and the overrides of
    its fields in `environ` (SHAPE_FIELDS: STEP_USERS, RAMP_SECONDS, SPIKE_SPAWN_RATE, …); the
    locustfile's process passes none, so its own environment is read."""
    env = os.environ if environ is None else environ

    def number(name: str, default: float) -> float:
        raw = env.get(name, "")
        try:
            return float(raw) if raw else default
        except ValueError as error:
            raise ValueError(f"{name}={raw!r} is not a number") from error

    for shape_type, (name, fields) in SHAPE_FIELDS.items():
        if spec == name:
            defaults, values = shape_type(), {}
            for variable, attr in fields.items():
                default = getattr(defaults, attr)
                value = number(variable, default)
                values[attr] = int(value) if isinstance(default, int) else value
            return shape_type(**values)
    if spec.startswith("file:") and len(spec) > len("file:"):
        return FileShape.read(spec.removeprefix("file:"))
    raise ValueError(f"unknown load shape {spec!r}; use one of: {', '.join(SHAPE_NAMES)}")
