"""Run `resnet-serving serve-local` as a child process (tests, benchmarks, the rehearsal)."""

from __future__ import annotations

import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tooling.loadgen.run import free_port
from tooling.waiting import wait_until_ready


@dataclass(frozen=True)
class LocalServer:
    """Addresses of a running local server: REST URL, gRPC host:port, and its log."""

    rest: str
    grpc: str
    log: Path
    pid: int


def batching_config(max_batch_size: int = 8, timeout_micros: int = 2000, threads: int = 1) -> str:
    """A TF Serving batching parameters file's text."""
    return (
        f"max_batch_size {{ value: {max_batch_size} }}\n"
        f"batch_timeout_micros {{ value: {timeout_micros} }}\n"
        f"num_batch_threads {{ value: {threads} }}\n"
    )


@contextmanager
def local_server(
    model_dir: Path,
    work_dir: Path,
    model_name: str = "image_classifier",
    batching: str | None = None,
    extra_flags: tuple[str, ...] = (),
    start_timeout: float = 180,
) -> Iterator[LocalServer]:
    """Starts the server on free loopback ports, waits until the model answers, stops it after."""
    work_dir.mkdir(parents=True, exist_ok=True)
    grpc_port, rest_port = free_port(), free_port()
    monitoring = work_dir / "monitoring.config"
    monitoring.write_text(
        'prometheus_config { enable: true, path: "/monitoring/prometheus/metrics" }\n'
    )
    flags = [
        f"--port={grpc_port}",
        f"--rest_api_port={rest_port}",
        f"--model_name={model_name}",
        f"--model_base_path={model_dir}",
        f"--monitoring_config_file={monitoring}",
        *extra_flags,
    ]
    if batching is not None:
        (work_dir / "batching.config").write_text(batching)
        flags += ["--enable_batching", f"--batching_parameters_file={work_dir / 'batching.config'}"]
    rest = f"http://127.0.0.1:{rest_port}"
    with serve_local_process(flags, work_dir, f"{rest}/v1/models/{model_name}", start_timeout) as (
        process,
        log,
    ):
        yield LocalServer(rest, f"127.0.0.1:{grpc_port}", log, process.pid)


@contextmanager
def serve_local_process(
    flags: list[str], work_dir: Path, ready_url: str, start_timeout: float = 180
) -> Iterator[tuple[subprocess.Popen, Path]]:
    """`serve-local` with these flags in its own process (its output in work_dir/server.log),
    once `ready_url` answers 200; stopped afterwards."""
    log = work_dir / "server.log"
    with open(log, "w") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "tooling.cli", "serve-local", *flags],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until_ready(
            "serve-local",
            f"{ready_url} to answer",
            lambda: answers(ready_url),
            running=lambda: process.poll() is None,
            log=log,
            timeout=start_timeout,
            period=0.5,
        )
        yield process, log
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def answers(url: str) -> bool:
    """Does `url` answer 200 (2xx) now?"""
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except OSError:  # refused, or an HTTP error (the model not loaded yet)
        return False
