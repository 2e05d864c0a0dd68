"""The story's background loops: one that fails stops the run with its reason instead of
leaving it waiting for a load that will never end, and every wait has its timeout."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from tooling.errors import UserError
from tooling.runs.background import BackgroundLoops
from tooling.runs.story import keep_the_record, wait_for_scale_in
from tooling.runs.target import StoryTarget
from tooling.runs.timeline import TIMELINE_COLUMNS, TimelineRecorder


def test_a_crashed_loop_stops_the_wait_with_its_own_error():
    loops = BackgroundLoops()
    never_set = threading.Event()

    def recorder(stop: threading.Event) -> None:
        raise ConnectionResetError("the API server went away")

    loops.start(recorder)
    started = time.monotonic()
    with pytest.raises(ConnectionResetError, match="went away"):
        loops.wait(never_set, timeout=60, what="the load to end")
    assert time.monotonic() - started < 10  # not the 60 s timeout: at the loop's failure
    loops.join()


def test_a_wait_ends_at_its_timeout_in_one_line():
    loops = BackgroundLoops()
    loops.start(lambda stop: stop.wait())  # a healthy loop that runs until told to stop
    with pytest.raises(UserError, match="waited 2 s for the load to end in vain"):
        loops.wait(threading.Event(), timeout=2, what="the load to end")
    loops.join()
    assert not any(thread.is_alive() for thread in loops.threads)


def recorded(run_dir, *rows) -> TimelineRecorder:
    """A recorder holding `rows` (t, users, replicas_ready, nodes_ready) as a run records
    them, each also written to run_dir/timeline.csv."""
    recorder = TimelineRecorder(None, None, None, "ns", "server", "app=x", None, run_dir, 1.0)
    for t, users, ready, nodes in rows:
        row = {column: "" for column in TIMELINE_COLUMNS}
        row.update(t_seconds=t, users=users, offered_rps=users, replicas_ready=ready)
        row.update(replicas_desired=ready, pods_pending=0, nodes_ready=nodes, response_ms=90)
        row["hpa_cpu_percent"] = 50
        recorder.rows.append(row)
        recorder.append(row)
    return recorder


def target(scale_in_timeout: float) -> StoryTarget:
    return StoryTarget(
        provider="test",
        kubeconfig=Path("unused"),
        start_load=lambda context: None,
        node_autoscaler=None,
        ready_timeout=1,
        scale_in_timeout=scale_in_timeout,
        sample_seconds=1,
    )


def test_a_run_that_does_not_scale_in_says_so_instead_of_failing(tmp_path):
    """wait_for's timeout is a UserError; the scale-in wait caught only TimeoutError, so a run
    that stayed scaled out ended in exit 2 without its report, and "not scaled in" never ran."""
    recorder = recorded(tmp_path, (0, 0, 1, 1), (10, 8, 3, 2), (20, 0, 3, 2))  # still at 3
    loops = BackgroundLoops()
    assert wait_for_scale_in(target(1), 1, recorder, loops) is False
    recorder.rows.append({**recorder.rows[-1], "t_seconds": 30, "replicas_ready": 1})
    assert wait_for_scale_in(target(1), 1, recorder, loops) is False  # nodes still at 2
    recorder.rows.append({**recorder.rows[-1], "t_seconds": 40, "nodes_ready": 1})
    # one replica ready while the HPA still wants 2: the second is starting, not scaled in
    assert recorder.rows[-1]["replicas_desired"] == 3
    recorder.rows.append({**recorder.rows[-1], "t_seconds": 45, "replicas_desired": 2})
    assert wait_for_scale_in(target(1), 1, recorder, loops) is False
    recorder.rows.append({**recorder.rows[-1], "t_seconds": 50, "replicas_desired": 1})
    assert wait_for_scale_in(target(1), 1, recorder, loops) is True
    blank = {column: "" for column in ("replicas_ready", "nodes_ready", "replicas_desired")}
    recorder.rows.append({**recorder.rows[-1], "t_seconds": 60, **blank})  # API not answering
    assert wait_for_scale_in(target(1), 1, recorder, loops) is False  # not read: not known


def test_a_loop_failing_during_the_scale_in_wait_is_the_runs_error(tmp_path):
    recorder = recorded(tmp_path, (0, 0, 1, 1), (10, 8, 3, 2))
    loops = BackgroundLoops()

    def autoscaler(stop: threading.Event) -> None:
        raise UserError("cluster-autoscaler exited (Cleaned up, exiting)")

    loops.start(autoscaler)
    with pytest.raises(UserError, match="cluster-autoscaler exited"):
        wait_for_scale_in(target(3), 1, recorder, loops)
    loops.join()


def test_a_failed_run_with_recorded_rows_still_writes_its_report(tmp_path):
    recorder = recorded(tmp_path, (0, 0, 1, 1), (10, 8, 2, 1), (20, 8, 3, 2))
    said: list[str] = []
    report = keep_the_record(tmp_path, recorder, "test", said.append, failed=True)
    assert report is not None and report.summary.max_replicas == 3
    assert {"timeline.csv", "events.csv", "timeline.png", "summary.md"} <= {
        path.name for path in tmp_path.iterdir()
    }
    assert "the failed run's record" in said[0]
    nothing = tmp_path / "nothing"
    empty = TimelineRecorder(None, None, None, "ns", "server", "app=x", None, nothing, 1.0)
    assert keep_the_record(nothing, empty, "test", said.append, failed=True) is None
    assert keep_the_record(nothing, None, "test", said.append, failed=True) is None
    assert not (nothing / "summary.md").exists()
