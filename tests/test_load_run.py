"""`load run`: the Locust chart's command lines mapped to this machine (fast), and real
distributed Locust runs (master + workers as processes) against the local server."""

from __future__ import annotations

import csv
import itertools
import sys

import pytest

from tooling import cli, paths
from tooling.errors import UserError
from tooling.loadgen import LOCUSTFILE
from tooling.loadgen.run import LoadRunSpec, load_commands, run_load, seconds_of
from tooling.rehearsal import locust_processes


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


def test_load_run_runs_the_charts_master_and_workers_mapped_to_this_machine(tmp_path):
    """`load run`'s command lines are charts/locust's, as the rehearsal runs them (they used to
    be written by hand): only what points inside a pod is mapped here."""
    report = tmp_path / "results"  # a results folder named like the pod's is mapped once
    spec = LoadRunSpec(
        host="http://127.0.0.1:8501",
        report_dir=report,
        shape=None,
        users=3,
        spawn_rate=1.5,
        workers=2,
        run_time="90",
        environment={"STEP_SECONDS": "60"},
    )
    locust = load_commands(spec)
    python_locust = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE)]
    assert locust.master[:6] == [*python_locust, "--master"]
    (master_port,) = [w.split("=")[1] for w in locust.worker if w.startswith("--master-port=")]
    assert {
        "--autostart",
        "--autoquit=0",
        f"--master-bind-port={master_port}",
        "--master-bind-host=127.0.0.1",
        f"--web-port={locust.web_port}",
        "--web-host=127.0.0.1",
        "--expect-workers=2",
        "--run-time=90s",
        "--users=3",
        "--spawn-rate=1.5",
        f"--csv={report / 'locust'}",
        "--csv-full-history",
        f"--html={report / 'report.html'}",
        "--only-summary",
    } <= set(locust.master)
    assert locust.worker == [
        *python_locust,
        "--worker",
        "--master-host=127.0.0.1",
        f"--master-port={master_port}",
        "--exit-code-on-error=0",
    ]
    assert locust.workers == 2
    assert locust.environment["LOCUST_HOST"] == spec.host
    assert locust.environment["IMAGES_DIR"] == str(paths.IMAGES_DIR)
    assert locust.environment["STEP_SECONDS"] == "60" and "LOAD_SHAPE" not in locust.environment
    assert "HOME" not in locust.environment
    pod_paths = [
        word
        for word in [*locust.master, *locust.worker, *locust.environment.values()]
        if "/mnt/locust" in word or ("/results" in word and str(report) not in word)
    ]
    assert not pod_paths


FILE_SHAPE = {"shape": "file", "shapeFile": "seconds,users\n0,1\n5,0\n"}


def test_a_file_shape_is_read_where_it_is_and_the_rehearsals_is_written_to_its_results(tmp_path):
    shape = tmp_path / "shape.csv"
    shape.write_text("seconds,users\n0,2\n8,0\n")
    report = tmp_path / "report"
    locust = load_commands(LoadRunSpec("http://127.0.0.1:8501", report, shape=f"file:{shape}"))
    assert locust.environment["LOAD_SHAPE"] == f"file:{shape}"
    assert not report.exists()  # nothing made before the run starts
    assert not any(word.startswith("--users=") for word in locust.master)
    results = tmp_path / "results"
    values = {"loadtest": {"host": "http://resnet-serving:8501", **FILE_SHAPE}}
    rehearsal = locust_processes.commands(values, "http://127.0.0.1:9", results)
    assert rehearsal.environment["LOAD_SHAPE"] == f"file:{results / 'shape.csv'}"
    assert (results / "shape.csv").read_text().strip() == FILE_SHAPE["shapeFile"].strip()


def test_load_run_without_helm_says_make_setup_before_starting_anything(
    tmp_path, monkeypatch, capsys
):
    """`load run` renders the Locust chart with the pinned helm."""
    monkeypatch.setenv("RESNET_SERVING_TOOLS", str(tmp_path / "no-tools"))
    report = tmp_path / "report"
    argv = ["load", "run", "--host", "http://127.0.0.1:8501", "--report", str(report)]
    assert cli.run(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "helm is not installed" in err and "run `make setup`" in err
    assert not report.exists()
