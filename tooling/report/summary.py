"""The numbers that sum up a run's timeline.csv (the rehearsal's, kind's or GKE's).

Each row holds for the interval up to the next sample (the last row holds for no time):
replica-minutes = Σ replicas_ready·Δt / 60, node-minutes = Σ nodes_ready·Δt / 60,
pending seconds = Σ Δt while pods_pending > 0, SLO-violation seconds = Σ Δt while users > 0
and the latency exceeds the SLO (or nothing serves at all). The latency is p95_ms where real
Locust measured it, else response_ms (the rehearsal's load model); "worst p95" is its largest
sample while users are on (Locust's p95 is over its last few seconds). "peak served" = from
the first sample at the run's most users to the sample from which, at that many users, the
latency is measured within the SLO and stays so (0: it always was; never: not before the
peak ended). failures = the largest cumulative failure count Locust reported (none with the
load model).

A row with users but no p95 from Locust (its first sample, taken before Locust has reported
one; or a window with no answer) is *unmeasured*: not over the SLO, and "latency unmeasured"
= Σ Δt of such rows, unless requests failed in it (the failure count rose) or nothing could
answer (no replica ready); those count as over the SLO. With the load model a missing
response time means no replica serves: over the SLO.

Rows sampled while the API server did not answer have blank cluster columns: they count as
"API server unreachable" seconds, and the sums hold the last value read before the gap.
"HPA without CPU metrics" = Σ Δt while users > 0, the API answers, and the HPA shows no CPU
utilization (metrics-server not serving): the HPA cannot scale then. In a run whose HPA scales
on an External metric (KEDA mode: the `hpa_external_value` column has values) it is "HPA
without its external metric", Σ Δt while that value is missing instead.
"""

from __future__ import annotations

import csv
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tooling.errors import UserError

DEFAULT_SLO_MS = 1000.0


@dataclass(frozen=True)
class TimelineSummary:
    max_replicas: int
    max_nodes: int
    time_to_first_scale_out_s: float | None  # from the first load to the first extra replica
    time_to_first_node_s: float | None  # from the first load to the first extra node Ready
    time_to_scale_in_s: float | None  # from the end of load to replicas and nodes at start level
    replica_minutes: float
    node_minutes: float
    pending_seconds: float
    slo_violation_seconds: float
    slo_ms: float
    worst_p95_ms: float | None = None  # the largest latency sample under load; None: none
    time_to_serve_peak_s: float | None = None  # peak users reached → first sample within SLO
    peak_users: int = 0
    failures: int | None = None  # None: no real load measured failures
    node_autoscaler: str | None = None  # what scaled the nodes (from run.json); None: unknown
    scaling_signal: str | None = None  # what the pods scaled on (from run.json); None: unknown
    hpa_metric: str = "CPU"  # what the HPA was blind to in hpa_blind_seconds
    api_unreachable_seconds: float = 0.0
    hpa_blind_seconds: float = 0.0
    unmeasured_seconds: float = 0.0  # users on, no latency measured (and nothing failed)

    def metrics(self) -> list[tuple[str, str]]:
        """(name, value as text) pairs: what `lines`, `markdown` and `compare` show."""

        def seconds(value: float | None, after: str) -> str:
            return "never" if value is None else f"{value:.0f} s {after}"

        described = [
            (name, value)
            for name, value in (
                ("node autoscaler", self.node_autoscaler),
                ("scaling signal", self.scaling_signal),
            )
            if value is not None
        ]
        return [
            *described,
            ("max replicas ready", f"{self.max_replicas}"),
            ("max nodes ready", f"{self.max_nodes}"),
            ("first scale-out", seconds(self.time_to_first_scale_out_s, "after load began")),
            ("first node added", seconds(self.time_to_first_node_s, "after load began")),
            ("back to minimum", seconds(self.time_to_scale_in_s, "after load ended")),
            ("replica-minutes", f"{self.replica_minutes:.1f}"),
            ("node-minutes", f"{self.node_minutes:.1f}"),
            ("pods pending for", f"{self.pending_seconds:.0f} s"),
            (f"over the {self.slo_ms:.0f} ms SLO for", f"{self.slo_violation_seconds:.0f} s"),
            ("latency unmeasured for", f"{self.unmeasured_seconds:.0f} s"),
            ("worst p95", "-" if self.worst_p95_ms is None else f"{self.worst_p95_ms:.0f} ms"),
            (
                "peak served",
                seconds(self.time_to_serve_peak_s, f"after {self.peak_users} users began"),
            ),
            ("failures", "-" if self.failures is None else f"{self.failures}"),
            *self.outages(),
        ]

    def outages(self) -> list[tuple[str, str]]:
        """Lines only for what went wrong in the run (none when nothing did)."""
        lines = []
        if self.api_unreachable_seconds:
            lines.append(("API server unreachable for", f"{self.api_unreachable_seconds:.0f} s"))
        if self.hpa_blind_seconds:
            what = "CPU metrics" if self.hpa_metric == "CPU" else "its external metric"
            lines.append((f"HPA without {what} for", f"{self.hpa_blind_seconds:.0f} s"))
        return lines

    def lines(self) -> list[str]:
        return [f"{name:<29}{value}" for name, value in self.metrics()]

    def markdown(self, title: str) -> str:
        rows = "\n".join(f"| {name} | {value} |" for name, value in self.metrics())
        return f"# {title}\n\n| metric | value |\n| --- | --- |\n{rows}\n"


def read_timeline(path: Path) -> list[dict[str, float | None]]:
    with open(path, newline="") as handle:
        return [
            {key: float(value) if value not in ("", None) else None for key, value in row.items()}
            for row in csv.DictReader(handle)
        ]


def first_time_since(
    rows: list[dict[str, float | None]],
    since: float | None,
    condition: Callable[[dict[str, float | None]], bool],
) -> float | None:
    """The first sample time at or after `since` where `condition` holds (None if none)."""
    if since is None:
        return None
    return next(
        (row["t_seconds"] for row in rows if row["t_seconds"] >= since and condition(row)), None
    )


def failures_rose(rows: list[dict[str, float | None]]) -> list[bool]:
    """Per row: did Locust's cumulative failure count rise at it (above the last count seen,
    0 before the first)?"""
    rose, seen = [], 0.0
    for row in rows:
        count = row.get("failures")
        rose.append(count is not None and count > seen)
        if count is not None:
            seen = max(seen, count)
    return rose


def largest_failure_count(rows: list[dict[str, float | None]]) -> int | None:
    counts = [int(row["failures"]) for row in rows if row.get("failures") is not None]
    return max(counts) if counts else None


def held(rows: list[dict[str, float | None]], columns: tuple[str, ...]) -> list[dict]:
    """Rows with blank cluster cells (the API server did not answer) holding the last values
    read before them (the first known ones, for a gap at the very start)."""
    first = next((row for row in rows if row["replicas_ready"] is not None), None)
    if first is None:
        raise UserError("the timeline has no row read from the cluster: nothing to sum up")
    last = {column: first[column] for column in columns}
    filled = []
    for row in rows:
        if row["replicas_ready"] is not None:
            last = {column: row[column] for column in columns}
        filled.append({**row, **last})
    return filled


HELD_COLUMNS = ("replicas_desired", "replicas_ready", "pods_pending", "nodes_ready")


def scaled_on_an_external_metric(rows: list[dict[str, float | None]]) -> bool:
    """KEDA mode: the HPA read an External metric (`hpa_external_value` has values), not CPU."""
    return any(row.get("hpa_external_value") is not None for row in rows)


def summarize(
    rows: list[dict[str, float | None]], slo_ms: float = DEFAULT_SLO_MS
) -> TimelineSummary:
    if not rows:
        raise UserError("the timeline has no rows")
    unreachable = [row["replicas_ready"] is None for row in rows]
    external = scaled_on_an_external_metric(rows)
    metric = "hpa_external_value" if external else "hpa_cpu_percent"
    blind = [
        (row["users"] or 0) > 0 and row["replicas_ready"] is not None and row.get(metric) is None
        for row in rows
    ]
    rows = held(rows, HELD_COLUMNS)
    spans = [later["t_seconds"] - row["t_seconds"] for row, later in itertools.pairwise(rows)]
    spans.append(0.0)
    start_replicas, start_nodes = rows[0]["replicas_ready"], rows[0]["nodes_ready"]
    loaded = [row["t_seconds"] for row in rows if (row["users"] or 0) > 0]
    first_load = loaded[0] if loaded else None
    scale_out = first_time_since(
        rows, first_load, lambda row: (row["replicas_desired"] or 0) > start_replicas
    )
    first_node = first_time_since(rows, first_load, lambda row: row["nodes_ready"] > start_nodes)
    load_end = None
    if loaded:
        after = [row["t_seconds"] for row in rows if row["t_seconds"] > loaded[-1]]
        load_end = after[0] if after else None
    back = first_time_since(
        rows,
        load_end,
        lambda row: row["replicas_ready"] <= start_replicas and row["nodes_ready"] <= start_nodes,
    )

    measured_p95 = any(row.get("p95_ms") is not None for row in rows)

    def latency(row: dict[str, float | None]) -> float | None:
        return row.get("p95_ms") if measured_p95 else row.get("response_ms")

    failed = failures_rose(rows)

    def unmeasured(index: int, row: dict[str, float | None]) -> bool:
        """Users on, no p95 from Locust yet, and no sign that nothing answered."""
        if (row["users"] or 0) <= 0 or latency(row) is not None or not measured_p95:
            return False
        return not failed[index] and (row["replicas_ready"] or 0) > 0

    missing = [unmeasured(index, row) for index, row in enumerate(rows)]

    def violates(index: int, row: dict[str, float | None]) -> bool:
        if (row["users"] or 0) <= 0 or missing[index]:
            return False
        return latency(row) is None or latency(row) > slo_ms

    over = [violates(index, row) for index, row in enumerate(rows)]
    peak = max((row["users"] or 0) for row in rows)
    at_peak = [i for i, row in enumerate(rows) if peak > 0 and (row["users"] or 0) == peak]
    last_over = max((n for n, i in enumerate(at_peak) if over[i]), default=-1)
    served = next((rows[i] for i in at_peak[last_over + 1 :] if not missing[i]), None)
    latencies = [
        value for row in rows if (row["users"] or 0) > 0 and (value := latency(row)) is not None
    ]

    def over_time(value: Callable[[dict[str, float | None]], float]) -> float:
        """Σ value(row)·Δt: each row's value holds until the next sample."""
        return sum(value(row) * span for row, span in zip(rows, spans, strict=True))

    def seconds_while(flags: list[bool]) -> float:
        return sum(span for flag, span in zip(flags, spans, strict=True) if flag)

    return TimelineSummary(
        max_replicas=int(max(row["replicas_ready"] for row in rows)),
        max_nodes=int(max(row["nodes_ready"] for row in rows)),
        time_to_first_scale_out_s=None if scale_out is None else scale_out - first_load,
        time_to_first_node_s=None if first_node is None else first_node - first_load,
        time_to_scale_in_s=None if back is None else back - load_end,
        replica_minutes=over_time(lambda row: row["replicas_ready"]) / 60,
        node_minutes=over_time(lambda row: row["nodes_ready"]) / 60,
        pending_seconds=over_time(lambda row: 1.0 if row["pods_pending"] else 0.0),
        slo_violation_seconds=seconds_while(over),
        slo_ms=slo_ms,
        worst_p95_ms=max(latencies) if latencies else None,
        time_to_serve_peak_s=(
            None if served is None else served["t_seconds"] - rows[at_peak[0]]["t_seconds"]
        ),
        peak_users=int(peak),
        failures=largest_failure_count(rows),
        api_unreachable_seconds=seconds_while(unreachable),
        hpa_blind_seconds=seconds_while(blind),
        hpa_metric="external" if external else "CPU",
        unmeasured_seconds=seconds_while(missing),
    )
