"""Distributed, headless Locust runs as processes: one master and N workers, the chart's own.

Their command lines are the Locust chart's, rendered with this run's values and mapped to this
machine (tooling.loadgen.locust_command, as the rehearsal runs them). Locust monkey-patches the
process it runs in (gevent), so it runs as separate processes with the project's locustfile,
never inside the caller. The master starts at once (`--autostart`) and keeps its web API on a
local port, which is read every few seconds to show progress.
"""

from __future__ import annotations

import contextlib
import csv
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tooling.errors import UserError
from tooling.loadgen import locust_command
from tooling.loadgen.live_stats import LiveStats, read_from_url
from tooling.loadgen.locust_command import LocalRun, LocustCommands
from tooling.names import SERVER_URL

PROGRESS_SECONDS = 5.0
OVERRUN_SECONDS = 120  # after --run-time, for the master to stop its workers and write results
EXPECT_WORKERS_SECONDS = 60  # local workers connect in seconds (the chart waits 120 for pods)
CHART_RUN_TIME = re.compile(r"([0-9]+h)?([0-9]+m)?([0-9]+s)?")  # the chart's loadtest.runTime


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


def chart_run_time(run_time: str) -> str:
    """--run-time as the chart takes it: Locust's bare seconds get their unit."""
    text = run_time.strip()
    if text.isdigit():
        return f"{text}s"
    if not text or not CHART_RUN_TIME.fullmatch(text):
        raise UserError(f"run time {run_time!r}: use a form like 20s, 5m or 1h30m")
    return text


def shape_path(spec: LoadRunSpec) -> Path | None:
    """The CSV of a `file:PATH` shape."""
    if spec.shape and spec.shape.startswith("file:"):
        return Path(spec.shape.removeprefix("file:"))
    return None


def chart_values(spec: LoadRunSpec) -> dict:
    """The Locust chart's values for this run, as a headless release of it would take them."""
    loadtest = {
        "host": SERVER_URL,  # the chart's host; on this machine the one under test
        "headless": True,
        "protocol": spec.protocol,
        "runTime": chart_run_time(spec.run_time),
        "shape": spec.shape or "",
        "users": spec.users,
        "spawnRate": spec.spawn_rate,
        "modelName": spec.model_name,
        "signatureName": spec.signature_name,
        "env": dict(spec.environment),
    }
    shape_file = shape_path(spec)
    if shape_file:
        loadtest.update(shape="file", shapeFile=shape_file.read_text())
    return {
        "loadtest": loadtest,
        "master": {"expectWorkersMaxWait": EXPECT_WORKERS_SECONDS},
        "worker": {"replicas": spec.workers},
    }


def load_commands(spec: LoadRunSpec) -> LocustCommands:
    """The chart's master and workers for this run, as command lines on this machine: against
    spec.host, Locust's CSV and HTML in spec.report_dir, a file shape read where it is."""
    master_port, web_port = free_ports(2)
    here = LocalRun(
        host=spec.host,
        results=spec.report_dir,
        master_port=master_port,
        web_port=spec.web_port or web_port,
        web_host=spec.web_host,
        shape_file=shape_path(spec),
    )
    return locust_command.commands(chart_values(spec), here)


def run_load(spec: LoadRunSpec, say: Callable[[str], None] = print) -> LoadRunResult:
    """Runs master + workers to the end of the run; Locust's CSV and HTML land in report_dir."""
    seconds_of(spec.run_time)  # reject a bad run time before starting anything
    locust = load_commands(spec)  # helm renders the chart: without it, `make setup` first
    say(
        f"load run: master + {spec.workers} worker(s) → {spec.host} "
        f"(shape {spec.shape or f'{spec.users} users'}, at most {spec.run_time})"
    )
    master, *workers = locust_command.start(locust, spec.report_dir, spec.niceness)
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
                    stats = read_from_url(f"http://127.0.0.1:{locust.web_port}", timeout=2)
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
