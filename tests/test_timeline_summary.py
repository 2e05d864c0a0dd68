"""The run summary, checked against values worked out by hand for a small timeline."""

from __future__ import annotations

import pytest

from tooling.errors import UserError
from tooling.report.summary import read_timeline, summarize

# t, users, rps, cpu%, desired, ready, pending, nodes, response_ms
HEADER = (
    "t_seconds,users,offered_rps,hpa_cpu_percent,replicas_desired,replicas_ready,"
    "pods_pending,nodes_ready,response_ms\n"
)
TIMELINE = (
    HEADER
    + """0,0,0,0,1,1,0,1,
10,4,4,50,1,1,0,1,80
20,8,8,90,2,1,1,1,1500
30,8,8,70,2,2,0,2,120
40,0,0,0,2,2,0,2,
60,0,0,0,1,1,0,2,
80,0,0,0,1,1,0,1,
"""
)


@pytest.fixture
def rows(tmp_path):
    path = tmp_path / "timeline.csv"
    path.write_text(TIMELINE)
    return read_timeline(path)


def test_summary_matches_hand_computed_values(rows):
    summary = summarize(rows, slo_ms=1000)
    assert summary.max_replicas == 2 and summary.max_nodes == 2
    # load starts at 10, the HPA wants 2 at 20, the second node is Ready at 30
    assert summary.time_to_first_scale_out_s == 10
    assert summary.time_to_first_node_s == 20
    # load ends after the row at 30 (next sample 40); back to 1 replica and 1 node at 80
    assert summary.time_to_scale_in_s == 40
    # replicas: 1·10 + 1·10 + 1·10 + 2·10 + 2·20 + 1·20 = 110 replica-seconds
    assert summary.replica_minutes == pytest.approx(110 / 60)
    # nodes: 1·10 + 1·10 + 1·10 + 2·10 + 2·20 + 2·20 = 130 node-seconds
    assert summary.node_minutes == pytest.approx(130 / 60)
    assert summary.pending_seconds == 10  # the row at 20
    assert summary.slo_violation_seconds == 10  # 1500 ms at 20
    assert summary.worst_p95_ms == 1500  # the largest latency while users are on
    # 8 users (the peak) from 20, over the SLO there, within it from 30 on
    assert summary.peak_users == 8 and summary.time_to_serve_peak_s == 10
    rows[3]["response_ms"] = 1200  # over it at 30 too: never served while the peak lasted
    assert summarize(rows).time_to_serve_peak_s is None
    rows[2]["response_ms"] = rows[3]["response_ms"] = 900  # within it all along
    assert summarize(rows).time_to_serve_peak_s == 0
    assert any("never" not in line for line in summary.lines())


def test_a_run_that_never_scales_says_never(rows):
    flat = [{**row, "replicas_desired": 1, "replicas_ready": 1, "nodes_ready": 1} for row in rows]
    summary = summarize(flat)
    assert summary.time_to_first_scale_out_s is None and summary.time_to_first_node_s is None
    assert summary.time_to_scale_in_s == 0
    assert "never" in summary.lines()[2] and "never" in summary.lines()[3]


def test_no_replica_serving_counts_against_the_slo(rows):
    rows[2]["response_ms"] = None
    assert summarize(rows).slo_violation_seconds == 10
    with pytest.raises(UserError, match="no rows"):
        summarize([])


def test_a_gap_in_the_api_is_counted_and_the_sums_hold_the_last_values(rows):
    # the API server did not answer for the samples at 20 and 30 (their cluster cells blank)
    for row in rows[2:4]:
        for column in ("hpa_cpu_percent", "replicas_desired", "replicas_ready"):
            row[column] = None
        row["pods_pending"] = row["nodes_ready"] = None
    summary = summarize(rows, slo_ms=1000)
    assert summary.api_unreachable_seconds == 20  # rows at 20 and 30, 10 s each
    # replicas held at 1 (the row at 10) through the gap: 1·10 + 1·10 + 1·10 + 1·10 + 2·20 + 1·20
    assert summary.replica_minutes == pytest.approx(100 / 60)
    assert summary.max_nodes == 2  # read again at 40
    assert ("API server unreachable for", "20 s") in summary.metrics()
    assert summary.hpa_blind_seconds == 0  # blank cells in a gap are not missing metrics


def test_load_with_no_cpu_metrics_is_said(rows):
    rows[2]["hpa_cpu_percent"] = None  # loaded, API answering, HPA without CPU utilization
    summary = summarize(rows)
    assert summary.hpa_blind_seconds == 10
    assert ("HPA without CPU metrics for", "10 s") in summary.metrics()
    assert not any("unreachable" in name for name, _ in summary.metrics())
