"""Shared fixtures: the pinned helm binaries and cached chart renders."""

from __future__ import annotations

import functools
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tooling import helm, paths

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


@dataclass(frozen=True)
class LocalServer:
    rest: str
    grpc: str
    log: Path


@pytest.fixture(scope="session")
def local_server(exported_model, tmp_path_factory) -> Iterator[LocalServer]:
    """`resnet-serving serve-local` in its own process, with batching, on free loopback ports."""
    from tooling.loadgen.run import free_port

    work = tmp_path_factory.mktemp("server")
    batching = work / "batching.config"
    batching.write_text(
        "max_batch_size { value: 8 }\nbatch_timeout_micros { value: 2000 }\n"
        "num_batch_threads { value: 1 }\n"
    )
    monitoring = work / "monitoring.config"
    monitoring.write_text(
        'prometheus_config { enable: true, path: "/monitoring/prometheus/metrics" }\n'
    )
    grpc_port, rest_port = free_port(), free_port()
    log = work / "server.log"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tooling.cli",
            "serve-local",
            f"--port={grpc_port}",
            f"--rest_api_port={rest_port}",
            "--model_name=image_classifier",
            f"--model_base_path={exported_model}",
            "--enable_batching",
            f"--batching_parameters_file={batching}",
            f"--monitoring_config_file={monitoring}",
        ],
        stdout=open(log, "w"),  # noqa: SIM115 (lives as long as the process)
        stderr=subprocess.STDOUT,
    )
    rest = f"http://127.0.0.1:{rest_port}"
    deadline = time.monotonic() + 180
    while True:
        try:
            with urllib.request.urlopen(f"{rest}/v1/models/image_classifier", timeout=2):
                break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"serve-local did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
    yield LocalServer(rest, f"127.0.0.1:{grpc_port}", log)
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
