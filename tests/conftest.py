"""Shared fixtures: the pinned helm binaries and cached chart renders."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path

import helm_cli as helm
import pytest

from tooling import paths
from tooling.serving import process

RESNET_CHART = paths.CHARTS_DIR / "resnet-serving"
LOCUST_CHART = paths.CHARTS_DIR / "locust"
CHARTS = (RESNET_CHART, LOCUST_CHART)
HELM_NAMES = helm.HELM_BINARIES


def ci_cases() -> list[tuple[Path, Path]]:
    """(chart, ci values file) for every ci/*-values.yaml of both charts."""
    return [(chart, values) for chart in CHARTS for values in helm.ci_values_files(chart)]


def case_id(case: tuple[Path, Path]) -> str:
    chart, values = case
    return f"{chart.name}:{values.name.removesuffix('-values.yaml')}"


@functools.cache
def render(chart: Path, values: Path | None, helm_name: str = "helm") -> tuple[dict, ...]:
    """Objects `helm template` renders for the chart with one values file (cached per session)."""
    files = [values] if values else []
    return tuple(helm.Helm.pinned(helm_name).template(chart, files))


def deep_merge(base: dict, override: dict) -> dict:
    """`override` laid over `base` the way helm merges values maps."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def objects_of(objects: tuple[dict, ...], kind: str) -> list[dict]:
    return [obj for obj in objects if obj.get("kind") == kind]


def one_of(objects: tuple[dict, ...], kind: str, name_suffix: str = "") -> dict:
    found = [
        obj for obj in objects_of(objects, kind) if obj["metadata"]["name"].endswith(name_suffix)
    ]
    assert len(found) == 1, f"expected one {kind} named *{name_suffix}, found {len(found)}"
    return found[0]


@pytest.fixture(params=HELM_NAMES)
def helm_name(request: pytest.FixtureRequest) -> str:
    """Each test using this runs with helm v4 (`helm`) and helm v3 (`helm3`)."""
    helm.Helm.pinned(request.param)  # fails with "run `make setup`" when missing
    return request.param


@pytest.fixture(scope="session")
def exported_model(tmp_path_factory) -> Path:
    """ResNet101 with seeded random weights, exported once per session: DIR/image_classifier."""
    from tooling.model.export import export_model

    out = tmp_path_factory.mktemp("model")
    export_model(out, name="image_classifier", version=1, weights="random", seed=0)
    return out / "image_classifier"


@pytest.fixture(scope="session")
def local_server(exported_model, tmp_path_factory) -> Iterator[process.LocalServer]:
    """`resnet-serving serve-local` in its own process, with batching, on free loopback ports."""
    with process.local_server(
        exported_model, tmp_path_factory.mktemp("server"), batching=process.batching_config()
    ) as server:
        yield server
