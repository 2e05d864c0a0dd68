"""The numbers that sum up a run's timeline.csv (the rehearsal's, kind's or GKE's).

Each row holds for the interval up to the next sample (the last row holds for no time):
replica-minutes = Σ replicas_ready·Δt / 60, node-minutes = Σ nodes_ready·Δt / 60,
pending seconds = Σ Δt while pods_pending > 0, SLO-violation seconds = Σ Δt while users > 0
and the response time exceeds the SLO (or nothing serves at all).
"""

from __future__ import annotations

import csv
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

DEFAULT_SLO_MS = 1000.0


@dataclass(frozen=True)
class TimelineSummary:
    max_replicas: int
    max_nodes: int
    time_to_first_scale_out_s: float | None  # from the first load to the first extra replica
    time_to_scale_in_s: float | None  # from the end of load to replicas and nodes at start level
    replica_minutes: float
    node_minutes: float
    pending_seconds: float
    slo_violation_seconds: float
    slo_ms: float

    def lines(self) -> list[str]:
        def seconds(value: float | None) -> str:
            return "never" if value is None else f"{value:.0f} s"

        return [
            f"max replicas ready      {self.max_replicas}",
            f"max nodes ready         {self.max_nodes}",
            f"first scale-out after   {seconds(self.time_to_first_scale_out_s)} of load",
            f"back to minimum after   {seconds(self.time_to_scale_in_s)} without load",
            f"replica-minutes         {self.replica_minutes:.1f}",
            f"node-minutes            {self.node_minutes:.1f}",
            f"pods pending for        {self.pending_seconds:.0f} s",
            f"over the {self.slo_ms:.0f} ms SLO for  {self.slo_violation_seconds:.0f} s",
        ]


def read_timeline(path: Path) -> list[dict[str, float | None]]:
    with open(path, newline="") as handle:
        return [
            {key: float(value) if value not in ("", None) else None for key, value in row.items()}
            for row in csv.DictReader(handle)
        ]


def summarize(
    rows: list[dict[str, float | None]], slo_ms: float = DEFAULT_SLO_MS
) -> TimelineSummary:
    if not rows:
        raise ValueError("the timeline has no rows")
    spans = [later["t_seconds"] - row["t_seconds"] for row, later in itertools.pairwise(rows)]
    spans.append(0.0)
    start_replicas, start_nodes = rows[0]["replicas_ready"], rows[0]["nodes_ready"]
    loaded = [row["t_seconds"] for row in rows if (row["users"] or 0) > 0]
    first_load = loaded[0] if loaded else None
    scale_out = next(
        (
            row["t_seconds"]
            for row in rows
            if first_load is not None
            and row["t_seconds"] >= first_load
            and (row["replicas_desired"] or 0) > start_replicas
        ),
        None,
    )
    load_end = None
    if loaded:
        after = [row["t_seconds"] for row in rows if row["t_seconds"] > loaded[-1]]
        load_end = after[0] if after else None
    back = next(
        (
            row["t_seconds"]
            for row in rows
            if load_end is not None
            and row["t_seconds"] >= load_end
            and row["replicas_ready"] <= start_replicas
            and row["nodes_ready"] <= start_nodes
        ),
        None,
    )

    def violates(row: dict[str, float | None]) -> bool:
        if (row["users"] or 0) <= 0:
            return False
        response = row.get("response_ms")
        return response is None or response > slo_ms

    def over_time(value: Callable[[dict[str, float | None]], float]) -> float:
        """Σ value(row)·Δt: each row's value holds until the next sample."""
        return sum(value(row) * span for row, span in zip(rows, spans, strict=True))

    return TimelineSummary(
        max_replicas=int(max(row["replicas_ready"] for row in rows)),
        max_nodes=int(max(row["nodes_ready"] for row in rows)),
        time_to_first_scale_out_s=None if scale_out is None else scale_out - first_load,
        time_to_scale_in_s=None if back is None else back - load_end,
        replica_minutes=over_time(lambda row: row["replicas_ready"]) / 60,
        node_minutes=over_time(lambda row: row["nodes_ready"]) / 60,
        pending_seconds=over_time(lambda row: 1.0 if row["pods_pending"] else 0.0),
        slo_violation_seconds=over_time(lambda row: 1.0 if violates(row) else 0.0),
        slo_ms=slo_ms,
    )
