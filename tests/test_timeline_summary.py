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


def timeline_rows(tmp_path, text: str):
    """The rows `read_timeline` gives for a timeline.csv holding `text`."""
    path = tmp_path / "timeline.csv"
    path.write_text(text)
    return read_timeline(path)


@pytest.fixture
def rows(tmp_path):
    return timeline_rows(tmp_path, TIMELINE)


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


# A run with real Locust: t, users, rps, cpu%, desired, ready, pending, nodes, response_ms,
# p50_ms, p95_ms, failures. Its first loaded sample comes before Locust has a p95; at 8 two
# requests failed and there is no p95; at 10 there is none again, but nothing failed.
LOCUST_TIMELINE = (
    HEADER.rstrip("\n")
    + """,p50_ms,p95_ms,failures
0,0,0,0,1,1,0,1,,,,
2,2,0,10,1,1,0,1,,,,0
4,2,2.1,20,1,1,0,1,90,90,120,0
6,4,4.2,40,1,1,0,1,95,95,1400,0
8,4,4.5,60,2,1,0,1,,,,2
10,4,4.4,50,2,2,0,1,,,,2
12,4,4.6,50,2,2,0,1,90,90,300,2
14,0,18.1,0,2,2,0,1,,,,2
20,0,18.1,0,1,1,0,1,,,,2
"""
)


@pytest.fixture
def locust_rows(tmp_path):
    return timeline_rows(tmp_path, LOCUST_TIMELINE)


def test_a_row_with_users_but_no_p95_yet_is_unmeasured_not_over_the_slo(locust_rows):
    """The first loaded sample precedes Locust's first p95: it used to count as 2 s over the
    SLO in every run. Unmeasured unless requests failed in it or no replica was ready."""
    summary = summarize(locust_rows, slo_ms=1000)
    assert summary.unmeasured_seconds == 4  # the rows at 2 and 10, 2 s each
    assert summary.slo_violation_seconds == 4  # 1400 ms at 6; at 8 failures rose 0 → 2
    assert ("latency unmeasured for", "4 s") in summary.metrics()
    assert summary.worst_p95_ms == 1400 and summary.failures == 2
    # 4 users from 6; over at 8; 10 unmeasured; measured within the SLO at 12
    assert summary.peak_users == 4 and summary.time_to_serve_peak_s == 6
    locust_rows[5]["replicas_ready"] = 0  # at 10 nothing could answer: over, not unmeasured
    summary = summarize(locust_rows, slo_ms=1000)
    assert summary.unmeasured_seconds == 2 and summary.slo_violation_seconds == 6


def test_a_stopped_locust_reads_0_requests_per_second():
    """Locust's current_rps averages the seconds before its last request, so a master whose
    users are gone kept reporting its last rate (18.1 req/s with 0 users for 270 s)."""
    from tooling.loadgen.live_stats import parse_stats, without_held_rate
    from tooling.runs.locust_load import sample_of

    def reading(users: int, requests: int, rps: float) -> dict:
        total = {"name": "Aggregated", "num_requests": requests, "num_failures": 0}
        return {
            "state": "running",
            "user_count": users,
            "current_rps": rps,
            "stats": [total],
            "current_response_time_percentiles": {},
        }

    running = parse_stats(reading(22, 5000, 18.1), read_at=0)
    assert without_held_rate(running, None).rps == 18.1
    later = parse_stats(reading(22, 5036, 18.1), read_at=2)
    assert without_held_rate(later, running).rps == 18.1  # requests still completing
    stopped = parse_stats(reading(0, 5036, 18.1), read_at=4)
    assert sample_of(without_held_rate(stopped, later)).offered_rps == 0
    # users on, no request done since: Locust not refreshed yet, then nothing completing
    unrefreshed = without_held_rate(parse_stats(reading(22, 5036, 18.1), read_at=4), later)
    assert unrefreshed.rps == 18.1
    stuck = parse_stats(reading(22, 5036, 18.1), read_at=14)  # 12 s after 5036 was first read
    assert without_held_rate(stuck, unrefreshed).rps == 0


def test_the_picture_draws_no_requests_without_users_and_no_failures_from_0_to_1(locust_rows):
    from tooling.report.timeline_plot import plot_timeline

    for row in locust_rows:
        row["failures"] = None if row["failures"] is None else 0.0  # none failed
    figure = plot_timeline(locust_rows, [], "locust", slo_ms=1000)
    failed = next(ax for ax in figure.axes if ax.get_ylabel() == "failed requests (total)")
    bottom, top = failed.get_ylim()
    assert bottom == 0 and 1 <= top < 2  # whole requests (it ran 0 to 0.055)
    rate = next(ax for ax in figure.axes if ax.get_ylabel() == "requests/s")
    drawn = list(rate.get_lines()[0].get_ydata())
    assert drawn[-2:] == [0, 0]  # the held 18.1 at 14 and 20, with no users, is not drawn
