"""events.csv: a run's own events, and `watch` adding what it sees to a run's file without
repeating what is there."""

from __future__ import annotations

import csv

from tooling.runs.timeline import TimelineRecorder


def recorder_with(run_dir, *events) -> TimelineRecorder:
    recorder = TimelineRecorder(None, None, None, "ns", "server", "app=x", None, run_dir, 1.0)
    for index, (t, reason, name) in enumerate(events):
        recorder.events[f"uid-{index}"] = {
            "t_seconds": t,
            "reason": reason,
            "kind": "Pod",
            "name": name,
            "message": f"{reason} {name}",
        }
    return recorder


def read(path):
    with open(path, newline="") as handle:
        return [(float(row["t_seconds"]), row["reason"]) for row in csv.DictReader(handle)]


def test_a_run_writes_its_events_in_time_order(tmp_path):
    _, events = recorder_with(
        tmp_path, (9, "ScaleDown", "n1"), (2, "TriggeredScaleUp", "p1")
    ).write()
    assert read(events) == [(2, "TriggeredScaleUp"), (9, "ScaleDown")]


def test_watch_appends_new_events_and_keeps_the_runs(tmp_path):
    recorder_with(tmp_path, (2, "TriggeredScaleUp", "p1")).write()
    watched = recorder_with(tmp_path, (40, "TriggeredScaleUp", "p1"), (41, "ScaleDown", "n1"))
    _, events = watched.write(append_events=True)
    assert read(events) == [(2, "TriggeredScaleUp"), (41, "ScaleDown")]
    _, events = recorder_with(tmp_path, (50, "Other", "x")).write()  # a new run starts afresh
    assert read(events) == [(50, "Other")]
