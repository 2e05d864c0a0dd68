"""Distributed, headless Locust runs as processes: one master and N workers, as in the chart.

Locust monkey-patches the process it runs in (gevent), so it runs as separate processes with
the project's locustfile, never inside the caller. The master starts at once (`--autostart`)
and keeps its web API on a local port, which is read every few seconds to show progress.
"""

from __future__ import annotations

import contextlib
import csv
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tooling.errors import UserError
from tooling.loadgen import LOCUSTFILE
from tooling.loadgen.live_stats import LiveStats, read_from_url

PROGRESS_SECONDS = 5.0
OVERRUN_SECONDS = 120  # after --run-time, for the master to stop its workers and write results


@dataclass(frozen=True)
class LoadRunSpec:
    """What to run: against `host`, with a shape (or fixed users), N workers, for `run_time`."""

    host: str
    report_dir: Path
    shape: str | None = "step"
    workers: int = 1
    run_time: str = "11m"
    users: int = 4
    spawn_rate: float = 2.0
    protocol: str = "rest"
    model_name: str = "image_classifier"
    signature_name: str = "serving_default"
    environment: dict[str, str] = field(default_factory=dict)
    web_host: str = "127.0.0.1"  # where the master's web API listens (live stats)
    web_port: int | None = None  # None: a free port
    # Locust's processes yield the CPU to a server measured on the same machine (nice value)
    niceness: int = 0


@dataclass(frozen=True)
class LoadRunResult:
    exit_code: int
    requests: int
    failures: int
    median_ms: float
    p95_ms: float
    requests_per_second: float
    report_dir: Path
    live: tuple[LiveStats, ...] = ()  # what the master's web API said while the run went

    @property
    def summary(self) -> str:
        return (
            f"{self.requests} requests, {self.failures} failures, "
            f"{self.requests_per_second:.2f} req/s, p50 {self.median_ms:.0f} ms, "
            f"p95 {self.p95_ms:.0f} ms"
        )


def free_port() -> int:
    """A loopback port nothing listens on now."""
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """`count` different loopback ports nothing listens on now (held together while chosen)."""
    with contextlib.ExitStack() as stack:
        probes = [stack.enter_context(socket.socket()) for _ in range(count)]
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [probe.getsockname()[1] for probe in probes]


def seconds_of(run_time: str) -> float:
    """Locust's run-time syntax (90, 90s, 2m, 1h30m) in seconds."""
    total, number = 0.0, ""
    for char in run_time.strip():
        if char.isdigit() or char == ".":
            number += char
        elif char in "hms" and number:
            total += float(number) * {"h": 3600, "m": 60, "s": 1}[char]
            number = ""
        else:
            raise UserError(f"run time {run_time!r}: use a form like 20s, 5m or 1h30m")
    return total + (float(number) if number else 0.0)


def number(cell: str) -> float:
    """A number from Locust's CSV; its blanks and N/A (no request answered) are 0."""
    return 0.0 if cell in ("", "N/A", None) else float(cell)


def read_aggregate(stats_csv: Path) -> dict[str, str]:
    """The 'Aggregated' row of Locust's *_stats.csv."""
    with open(stats_csv, newline="") as handle:
        for row in csv.DictReader(handle):
            if row.get("Name") == "Aggregated":
                return row
    raise ValueError(f"{stats_csv} has no Aggregated row")


def run_load(spec: LoadRunSpec, say: Callable[[str], None] = print) -> LoadRunResult:
    """Runs master + workers to the end of the run; Locust's CSV and HTML land in report_dir."""
    seconds_of(spec.run_time)  # reject a bad run time before starting anything
    spec.report_dir.mkdir(parents=True, exist_ok=True)
    port, web_port = free_port(), spec.web_port or free_port()
    env = {
        **os.environ,
        "PREDICT_PROTOCOL": spec.protocol,
        "MODEL_NAME": spec.model_name,
        "SIGNATURE_NAME": spec.signature_name,
        "SPAWN_RATE": str(spec.spawn_rate),
        **spec.environment,
    }
    if spec.shape:
        env["LOAD_SHAPE"] = spec.shape
    else:
        env.pop("LOAD_SHAPE", None)
    locust = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE)]
    master_args = [
        "--master",
        "--autostart",
        "--autoquit=0",
        f"--web-host={spec.web_host}",
        f"--web-port={web_port}",
        "--master-bind-host=127.0.0.1",
        f"--master-bind-port={port}",
        f"--expect-workers={spec.workers}",
        "--expect-workers-max-wait=60",
        f"--run-time={spec.run_time}",
        f"--host={spec.host}",
        f"--csv={spec.report_dir / 'locust'}",
        "--csv-full-history",
        f"--html={spec.report_dir / 'report.html'}",
        "--only-summary",
    ]
    if not spec.shape:
        master_args += [f"--users={spec.users}", f"--spawn-rate={spec.spawn_rate}"]
    log = open(spec.report_dir / "locust.log", "w")  # noqa: SIM115 (closed below)
    say(
        f"load run: master + {spec.workers} worker(s) → {spec.host} "
        f"(shape {spec.shape or f'{spec.users} users'}, at most {spec.run_time})"
    )
    nice = ["nice", "-n", str(spec.niceness)] if spec.niceness else []
    locust = [*nice, *locust]
    master = subprocess.Popen(
        [*locust, *master_args], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    workers = [
        subprocess.Popen(
            [*locust, "--worker", "--master-host=127.0.0.1", f"--master-port={port}"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        for _ in range(spec.workers)
    ]
    started = time.monotonic()
    deadline = started + seconds_of(spec.run_time) + OVERRUN_SECONDS
    live: list[LiveStats] = []
    next_progress = started + PROGRESS_SECONDS
    try:
        while master.poll() is None:
            if time.monotonic() > deadline:
                raise UserError(
                    f"Locust did not finish within --run-time {spec.run_time} and "
                    f"{OVERRUN_SECONDS} s more; its log: {spec.report_dir / 'locust.log'}"
                )
            if time.monotonic() >= next_progress:
                next_progress += PROGRESS_SECONDS
                try:
                    stats = read_from_url(f"http://127.0.0.1:{web_port}", timeout=2)
                except OSError:  # not listening yet, or already quitting
                    continue
                live.append(stats)
                say(f"load run: {time.monotonic() - started:4.0f} s  {stats.line()}")
            time.sleep(1)
        for worker in workers:
            worker.wait(timeout=30)
    finally:
        for process in (master, *workers):
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=10)
        log.close()
    stats = spec.report_dir / "locust_stats.csv"
    if not stats.is_file():
        raise UserError(f"Locust wrote no results; see {spec.report_dir / 'locust.log'}")
    row = read_aggregate(stats)
    result = LoadRunResult(
        exit_code=master.returncode,
        requests=int(row["Request Count"]),
        failures=int(row["Failure Count"]),
        median_ms=number(row["Median Response Time"]),
        p95_ms=number(row["95%"]),
        requests_per_second=number(row["Requests/s"]),
        report_dir=spec.report_dir,
        live=tuple(live),
    )
    say(
        f"load run: {result.summary} in {time.monotonic() - started:.0f} s; "
        f"results in {spec.report_dir}"
    )
    return result
