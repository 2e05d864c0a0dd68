"""`tune`'s results: one row per configuration from its run's own summary (the one `report`
and `compare` print), the Pareto-best marked, as tune.md, tune.csv and tune.png.

Pareto-best: no other configuration is at least as good on both seconds over the SLO and
node-minutes (what the spike costs users, what the nodes cost) and better on one."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from matplotlib import pyplot
from matplotlib.figure import Figure

from tooling.report.run_report import compare_runs, run_summary
from tooling.report.summary import TimelineSummary
from tooling.report.timeline_plot import save
from tooling.tuning.runner import Outcome

COLUMNS = (
    "configuration",
    "over SLO (s)",
    "worst p95 (ms)",
    "failures",
    "replica-minutes",
    "node-minutes",
    "first scale-out (s)",
    "pareto",
)


@dataclass(frozen=True)
class Row:
    name: str
    summary: TimelineSummary | None  # None: the run recorded nothing (see its log)
    log: Path
    pareto: bool = False

    def cells(self) -> list[str]:
        if self.summary is None:
            return [self.name, f"no run: see {self.log.name}", "", "", "", "", "", ""]
        s = self.summary

        def number(value: float | int | None, digits: int = 0) -> str:
            return "-" if value is None else f"{value:.{digits}f}"

        return [
            self.name,
            number(s.slo_violation_seconds),
            number(s.worst_p95_ms),
            number(s.failures),
            number(s.replica_minutes, 1),
            number(s.node_minutes, 1),
            "never" if s.time_to_first_scale_out_s is None else number(s.time_to_first_scale_out_s),
            "★" if self.pareto else "",
        ]


def dominates(a: TimelineSummary, b: TimelineSummary) -> bool:
    no_worse = (
        a.slo_violation_seconds <= b.slo_violation_seconds and a.node_minutes <= b.node_minutes
    )
    better = a.slo_violation_seconds < b.slo_violation_seconds or a.node_minutes < b.node_minutes
    return no_worse and better


def pareto_marked(rows: list[Row]) -> list[Row]:
    summaries = [row.summary for row in rows if row.summary is not None]
    return [
        Row(
            row.name,
            row.summary,
            row.log,
            row.summary is not None and not any(dominates(o, row.summary) for o in summaries),
        )
        for row in rows
    ]


def result_rows(outcomes: list[Outcome], slo_ms: float) -> list[Row]:
    rows = [
        Row(o.configuration.name, run_summary(o.run_dir, slo_ms) if o.recorded else None, o.log)
        for o in outcomes
    ]
    return pareto_marked(rows)


def markdown_table(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + " --- |" * len(COLUMNS)]
    lines += ["| " + " | ".join(row.cells()) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def plot_tradeoff(rows: list[Row], slo_ms: float) -> Figure:
    """Node-minutes against seconds over the SLO, one point per configuration, the
    Pareto-best joined."""
    figure, ax = pyplot.subplots(figsize=(8, 5.5), constrained_layout=True)
    measured = [row for row in rows if row.summary is not None]
    for row in measured:
        s = row.summary
        ax.scatter(
            s.node_minutes,
            s.slo_violation_seconds,
            s=90 if row.pareto else 45,
            marker="*" if row.pareto else "o",
            color="tab:green" if row.pareto else "tab:gray",
            zorder=3,
        )
        ax.annotate(
            row.name,
            (s.node_minutes, s.slo_violation_seconds),
            fontsize=8,
            xytext=(5, 5),
            textcoords="offset points",
        )
    front = sorted(
        (r.summary.node_minutes, r.summary.slo_violation_seconds) for r in measured if r.pareto
    )
    if len(front) > 1:
        ax.plot(*zip(*front, strict=True), color="tab:green", alpha=0.5, label="Pareto-best")
        ax.legend(loc="upper right")
    ax.set_xlim(left=0, right=max([r.summary.node_minutes for r in measured] + [1]) * 1.35)
    ax.set_ylim(bottom=0, top=max([r.summary.slo_violation_seconds for r in measured] + [5]) * 1.2)
    ax.set_xlabel("node-minutes (cost)")
    ax.set_ylabel(f"seconds over the {slo_ms:.0f} ms SLO")
    ax.set_title("configurations: cost against time over the SLO (lower left is better)")
    ax.grid(alpha=0.3)
    return figure


def node_autoscalers(rows: list[Row]) -> str:
    """What scaled the nodes in the runs (from their run.json), so no table hides a stand-in."""
    names = sorted({row.summary.node_autoscaler or "not recorded" for row in rows if row.summary})
    return "; ".join(names) or "-"


def scaling_signals(rows: list[Row]) -> str:
    """What each configuration's pods scaled on (from its run.json), one line each."""
    return "\n".join(
        f"- {row.name}: {row.summary.scaling_signal or 'not recorded'}"
        for row in rows
        if row.summary
    )


def write_results(
    outcomes: list[Outcome], out_dir: Path, slo_ms: float, heading: str
) -> tuple[str, list[Row]]:
    """tune.md, tune.csv, tune.png and, for two or more recorded runs, compare/ (the
    `compare` verb's timelines); returns the table and its rows."""
    rows = result_rows(outcomes, slo_ms)
    table = markdown_table(rows)
    with open(out_dir / "tune.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        writer.writerows(row.cells() for row in rows)
    save(plot_tradeoff(rows, slo_ms), out_dir / "tune.png")
    recorded = [o.run_dir for o in outcomes if o.recorded]
    timelines = ""
    if len(recorded) >= 2:
        compare_runs(recorded, out_dir / "compare", slo_ms)
        timelines = "\n![timelines](compare/compare.png)\n"
    (out_dir / "tune.md").write_text(
        f"# {heading}\n\nnode autoscaler: {node_autoscalers(rows)}\n\n"
        f"scaling signal:\n{scaling_signals(rows) or '-'}\n\n{table}\n"
        "★ Pareto-best on seconds over the SLO and node-minutes.\n\n"
        f"![trade-off](tune.png)\n{timelines}"
    )
    return table, rows
