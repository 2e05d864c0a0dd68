"""A real distributed Locust run (master + workers as processes) against the local server."""

from __future__ import annotations

import csv
import itertools

import pytest

from tooling import cli
from tooling.errors import UserError
from tooling.loadgen.run import LoadRunSpec, run_load, seconds_of


def test_distributed_run_finishes_without_failures_and_writes_its_csv(local_server, tmp_path):
    shape = tmp_path / "shape.csv"
    shape.write_text("seconds,users\n0,2\n8,4\n18,0\n")
    report = tmp_path / "report"
    result = run_load(
        LoadRunSpec(
            host=local_server.rest,
            report_dir=report,
            shape=f"file:{shape}",
            workers=2,
            run_time="40s",
        ),
        say=lambda line: None,
    )
    assert result.exit_code == 0
    assert result.failures == 0
    assert result.requests > 10
    with open(report / "locust_stats_history.csv", newline="") as handle:
        history = list(csv.DictReader(handle))
    assert max(int(row["User Count"]) for row in history) == 4
    assert (report / "report.html").stat().st_size > 0
    # The master's web API was read while the run went (what `watch` and the e2e recorder use).
    running = [stats for stats in result.live if stats.running]
    assert running, f"no live reading while running: {result.live}"
    assert max(stats.users for stats in running) in (2, 4)
    assert all(a.requests <= b.requests for a, b in itertools.pairwise(running))
    assert running[-1].requests <= result.requests
    assert running[-1].p95_ms is not None and running[-1].p95_ms > 0


def test_grpc_user_runs_against_the_grpc_port(local_server, tmp_path):
    result = run_load(
        LoadRunSpec(
            host=local_server.grpc,
            report_dir=tmp_path,
            shape=None,
            users=2,
            workers=1,
            run_time="8s",
            protocol="grpc",
        ),
        say=lambda line: None,
    )
    assert result.failures == 0 and result.requests > 0


def test_bad_load_options_say_what_to_use(tmp_path, capsys):
    assert (
        cli.run(["load", "run", "--host", "http://x", "--shape", "wave", "--report", str(tmp_path)])
        == 2
    )
    assert "step, ramp, spike, file:PATH" in capsys.readouterr().err
    with pytest.raises(UserError, match="20s, 5m"):
        seconds_of("ten minutes")
    assert seconds_of("1h2m3s") == 3723


def test_run_time_bounds_a_shape(local_server, tmp_path):
    """The step shape lasts 11 steps of 60 s; --run-time 12s must end it after 12 s (a shape used to
    ignore the run time, and the run ended in a traceback minutes later)."""
    report = tmp_path / "report"
    result = run_load(
        LoadRunSpec(
            host=local_server.rest,
            report_dir=report,
            shape="step",
            workers=1,
            run_time="12s",
            environment={"STEP_SECONDS": "60"},
        ),
        say=lambda line: None,
    )
    assert result.exit_code == 0 and result.requests > 0
    with open(report / "locust_stats_history.csv", newline="") as handle:
        stamps = [int(row["Timestamp"]) for row in csv.DictReader(handle)]
    assert stamps[-1] - stamps[0] <= 12 + 5  # the shape stopped at the run time, not at 660 s
