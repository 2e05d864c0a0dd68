"""Shared fixtures: the pinned helm binaries and cached chart renders."""

from __future__ import annotations

import contextlib
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


SAFE_TO_EVICT_LOCAL_VOLUMES = "cluster-autoscaler.kubernetes.io/safe-to-evict-local-volumes"


def volumes_blocking_scale_down(template: dict) -> set[str]:
    """A pod template's local volumes (disk emptyDir, hostPath) its safe-to-evict-local-volumes
    annotation does not list: each keeps the Cluster Autoscaler from draining the pod's node
    (its rule in pkg/utils/drain)."""
    annotation = template["metadata"].get("annotations", {}).get(SAFE_TO_EVICT_LOCAL_VOLUMES, "")
    listed = set(filter(None, annotation.split(",")))
    local = {
        volume["name"]
        for volume in template["spec"].get("volumes", [])
        if "hostPath" in volume
        or ("emptyDir" in volume and (volume["emptyDir"] or {}).get("medium") != "Memory")
    }
    return local - listed


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


@contextlib.contextmanager
def bare_rehearsal_cluster(
    name: str, folder: Path, namespace: str
) -> Iterator[tuple[Path, object]]:
    """A rehearsal control plane (fast profile, no node yet), once `namespace` (created if it
    is not there, Pod Security restricted) has the default ServiceAccount pods need; deleted
    afterwards. Yields its kubeconfig and an API client."""
    from kubernetes import client

    from tooling.kube import api_client
    from tooling.rehearsal.cluster import create_cluster, delete_cluster
    from tooling.rehearsal.profiles import profile
    from tooling.runs.story import ensure_app_namespace, wait_for

    try:
        cluster = create_cluster(name, folder / "kubeconfig", profile("fast"), print)
        api = api_client(cluster.kubeconfig)
        core = client.CoreV1Api(api)
        if namespace != "default":
            ensure_app_namespace(core, namespace)
        wait_for(  # made by a controller; pods need it
            lambda: bool(core.list_namespaced_service_account(namespace).items),
            60,
            f"the default ServiceAccount of {namespace}",
        )
        yield cluster.kubeconfig, api
    finally:
        delete_cluster(name)
