"""The configurations `tune` compares: values files as they are, or the points of a grid over
named chart keys (each point a small values file laid over the base values)."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from tooling.errors import UserError


@dataclass(frozen=True)
class Configuration:
    name: str  # also its run directory's name
    values_files: tuple[Path, ...]


@dataclass(frozen=True)
class GridAxis:
    key: str  # a dotted chart key, e.g. autoscaling.targetCPUUtilizationPercentage
    values: tuple[object, ...]


def parse_axis(text: str) -> GridAxis:
    """`KEY=V1,V2,…` → the axis; each value read as YAML (50 is a number, true a boolean)."""
    key, separator, values = text.partition("=")
    if not separator or not key or not values:
        raise UserError(
            f"--grid {text!r}: write KEY=VALUE1,VALUE2 (e.g. autoscaling.minReplicas=1,2)"
        )
    if not re.fullmatch(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*", key):
        raise UserError(f"--grid {text!r}: {key!r} is not a dotted chart key")
    return GridAxis(key, tuple(yaml.safe_load(value) for value in values.split(",")))


def nested(dotted: dict[str, object]) -> dict:
    """{"a.b": 1, "a.c": 2} → {"a": {"b": 1, "c": 2}}."""
    values: dict = {}
    for key, value in dotted.items():
        *parents, leaf = key.split(".")
        level = values
        for parent in parents:
            level = level.setdefault(parent, {})
        level[leaf] = value
    return values


def point_name(point: dict[str, object]) -> str:
    """A short, file-safe name: each key's last part and its value."""
    parts = [f"{key.rsplit('.', 1)[-1]}={value}" for key, value in point.items()]
    return re.sub(r"[^A-Za-z0-9_.=,-]", "_", ",".join(parts))


def grid_configurations(
    axes: list[GridAxis], base: tuple[Path, ...], folder: Path
) -> list[Configuration]:
    """One configuration per point of the grid: the base values, then the point's values
    (written to `folder`/NAME.yaml)."""
    folder.mkdir(parents=True, exist_ok=True)
    configurations = []
    for values in itertools.product(*(axis.values for axis in axes)):
        point = dict(zip((axis.key for axis in axes), values, strict=True))
        name = point_name(point)
        path = folder / f"{name}.yaml"
        path.write_text(yaml.safe_dump(nested(point), sort_keys=False))
        configurations.append(Configuration(name, (*base, path)))
    return configurations


def file_configurations(values_files: list[Path]) -> list[Configuration]:
    """One configuration per values file, named by the file."""
    missing = [str(path) for path in values_files if not path.is_file()]
    if missing:
        raise UserError(f"no such values file: {', '.join(missing)}")
    names = [path.stem for path in values_files]
    if len(set(names)) != len(names):
        names = [f"{index + 1}-{path.stem}" for index, path in enumerate(values_files)]
    return [Configuration(name, (path,)) for name, path in zip(names, values_files, strict=True)]


def configurations(
    values_files: list[Path], axes: list[GridAxis], base: tuple[Path, ...], folder: Path
) -> list[Configuration]:
    """The values files' configurations, then the grid's."""
    found = file_configurations(values_files) + (
        grid_configurations(axes, base, folder) if axes else []
    )
    if len(found) < 2:
        raise UserError(
            "tune compares two or more configurations: give --values FILE more than once, "
            "or --grid KEY=V1,V2"
        )
    return found
