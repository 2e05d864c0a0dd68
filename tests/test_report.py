"""The run report and comparison, from a recorded rehearsal run (tests/data/rehearsal-run:
the lab's values, the lab's step shape, fast profile), checked through the plotting objects
and against numbers worked out by hand from its timeline.csv."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from matplotlib.axes import Axes

from tooling import cli
from tooling.report.run_report import compare_runs
from tooling.report.summary import read_timeline, summarize
from tooling.report.timeline_plot import pending_spans, plot_timeline, read_events

RECORDED = Path(__file__).parent / "data" / "rehearsal-run"


@pytest.fixture
def run_dir(tmp_path):
    copy = tmp_path / "lab-values"
    shutil.copytree(RECORDED, copy)
    return copy


def line_labels(ax: Axes) -> list[str]:
    return [line.get_label() for line in ax.get_lines() if not line.get_label().startswith("_")]


def test_picture_has_the_four_panels_and_the_run_in_them(run_dir):
    rows = read_timeline(run_dir / "timeline.csv")
    events = read_events(run_dir / "events.csv")
    figure = plot_timeline(rows, events, "lab", slo_ms=1000)
    load, latency, replicas, nodes = (ax for ax in figure.axes if ax.get_ylabel() != "requests/s")
    rate = next(ax for ax in figure.axes if ax.get_ylabel() == "requests/s")
    assert load.get_shared_x_axes().joined(load, nodes)
    assert "users" in line_labels(load) and line_labels(rate) == ["requests/s"]
    assert [ax.get_ylabel() for ax in (load, latency, replicas, nodes)] == [
        "users",
        "ms",
        "replicas",
        "nodes",
    ]
    slo = next(line for line in latency.get_lines() if line.get_label() == "SLO 1000 ms")
    assert set(slo.get_ydata()) == {1000}
    ready = next(line for line in replicas.get_lines() if line.get_label() == "ready")
    assert list(ready.get_ydata()) == [row["replicas_ready"] for row in rows]
    assert list(ready.get_xdata()) == [row["t_seconds"] for row in rows]
    shaded = [patch for patch in replicas.patches if patch.get_gid() == "pending"]
    assert len(shaded) == len(pending_spans(rows)) > 0
    node_line = next(line for line in nodes.get_lines() if line.get_label() == "nodes ready")
    assert max(node_line.get_ydata()) == 3
    # every HPA rescale and node scale event is a vertical line in each panel
    marked = [line for line in nodes.get_lines() if (line.get_gid() or "").startswith("event:")]
    wanted = [
        e for e in events if e["reason"] in ("SuccessfulRescale", "TriggeredScaleUp", "ScaleDown")
    ]
    assert len(marked) == len(wanted) > 0


def test_report_writes_the_picture_and_the_summary(run_dir, capsys):
    assert cli.run(["report", str(run_dir)]) == 0
    printed = capsys.readouterr().out
    assert (run_dir / "timeline.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    markdown = (run_dir / "summary.md").read_text()
    assert markdown.startswith("# lab-values") and "![timeline](timeline.png)" in markdown
    assert "| max nodes ready | 3 |" in markdown
    # recorded before the real autoscaler was built here: its run.json names the stand-in
    assert "| node autoscaler | stand-in (RehearsalNodeGroupController" in markdown
    assert "max replicas ready" in printed


def test_compare_puts_runs_side_by_side(run_dir, tmp_path, capsys):
    other = tmp_path / "other"
    shutil.copytree(run_dir, other)
    rows = read_timeline(other / "timeline.csv")
    flat = (other / "timeline.csv").read_text().splitlines()
    (other / "timeline.csv").write_text("\n".join(flat[: len(rows) // 2 + 1]) + "\n")
    table, picture = compare_runs([run_dir, other], tmp_path / "out")
    assert table.splitlines()[0] == "| metric | lab-values | other |"
    assert picture.is_file() and (tmp_path / "out" / "compare.md").is_file()
    assert cli.run(["compare", str(run_dir)]) == 2
    assert "two or more" in capsys.readouterr().err


def test_report_of_a_folder_without_a_timeline_says_what_to_give(tmp_path, capsys):
    assert cli.run(["report", str(tmp_path)]) == 2
    assert "give a run directory made by `rehearse`, `up` or `watch`" in capsys.readouterr().err


def test_summary_of_the_recorded_run_matches_hand_computed_values():
    summary = summarize(read_timeline(RECORDED / "timeline.csv"))
    expected = HAND_COMPUTED
    assert summary.max_replicas == expected["max_replicas"]
    assert summary.max_nodes == expected["max_nodes"]
    assert summary.time_to_first_scale_out_s == pytest.approx(expected["first_scale_out"])
    assert summary.time_to_first_node_s == pytest.approx(expected["first_node"])
    assert summary.time_to_scale_in_s == pytest.approx(expected["scale_in"])
    assert summary.replica_minutes == pytest.approx(expected["replica_minutes"], abs=0.01)
    assert summary.node_minutes == pytest.approx(expected["node_minutes"], abs=0.01)
    assert summary.pending_seconds == pytest.approx(expected["pending_seconds"], abs=0.1)
    assert summary.slo_violation_seconds == pytest.approx(expected["slo_seconds"], abs=0.1)
    assert summary.failures is None


# Worked out from tests/data/rehearsal-run/timeline.csv by tests/data/hand_summary.awk (awk, a
# second and independent reading of the definitions in tooling/report/summary.py).
HAND_COMPUTED = {
    "max_replicas": 3,
    "max_nodes": 3,
    "first_scale_out": 251.5,  # the first row wanting 2 replicas, after the first loaded row
    "first_node": 259.6,  # the first row with a second node Ready, after the first loaded row
    "scale_in": 50.8,  # from the first row after the load to 1 replica on 1 node
    "replica_minutes": 21.1017,
    "node_minutes": 22.0167,
    "pending_seconds": 24.5,
    "slo_seconds": 0.0,
}


def test_an_api_gap_is_shaded_on_the_picture(run_dir):
    from tooling.report.timeline_plot import plot_timeline, read_events

    rows = read_timeline(run_dir / "timeline.csv")
    for row in rows[10:14]:  # the API server did not answer for these samples
        row["replicas_ready"] = row["replicas_desired"] = row["nodes_ready"] = None
    figure = plot_timeline(rows, read_events(run_dir / "events.csv"), "gap")
    nodes = figure.axes[3]
    (shade,) = [patch for patch in nodes.patches if patch.get_gid() == "unreachable"]
    start, width = shade.get_x(), shade.get_width()
    assert (start, start + width) == pytest.approx((rows[10]["t_seconds"], rows[14]["t_seconds"]))
    assert "API server unreachable" in nodes.get_legend_handles_labels()[1]


def test_keda_modes_external_metric_is_drawn_beside_the_replicas(run_dir):
    from tooling.report.timeline_plot import EXTERNAL_METRIC_LABEL

    rows = read_timeline(run_dir / "timeline.csv")
    plain = plot_timeline(rows, [], "cpu")
    assert EXTERNAL_METRIC_LABEL not in [ax.get_ylabel() for ax in plain.axes]
    for index, row in enumerate(rows):  # KEDA mode: the HPA's external value, some blank
        row["hpa_external_value"] = None if index < 3 else index * 0.25
    figure = plot_timeline(rows, [], "requests")
    (signal,) = [ax for ax in figure.axes if ax.get_ylabel() == EXTERNAL_METRIC_LABEL]
    (line,) = [line for line in signal.get_lines() if line.get_gid() == "hpa-external"]
    assert list(line.get_ydata()[3:]) == [index * 0.25 for index in range(3, len(rows))]
    replicas = next(ax for ax in figure.axes if ax.get_ylabel() == "replicas")
    assert signal.get_shared_x_axes().joined(signal, replicas)
    assert "HPA external metric (per replica)" in replicas.get_legend().get_texts()[-1].get_text()
