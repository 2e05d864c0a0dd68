"""Pictures of runs: one run's timeline as stacked panels, or several runs overlaid.

Panels share the time axis: users and requests/s; latency against the SLO line (p95 and p50
where Locust measured them, with its failed requests); replicas
desired vs ready with the time pods were Pending shaded, and in KEDA mode the HPA's external
metric per replica (the `hpa_external_value` column) beside them; nodes. Scale events are vertical
lines: SuccessfulRescale (the HPA), TriggeredScaleUp and ScaleDown (the cluster autoscaler).
"""

from __future__ import annotations

import csv
import itertools
from collections.abc import Callable, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display

from matplotlib import pyplot
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from tooling.report.summary import scaled_on_an_external_metric

Rows = list[dict[str, float | None]]
EVENT_STYLES = {
    "SuccessfulRescale": ("tab:purple", "HPA rescale"),
    "TriggeredScaleUp": ("tab:green", "node added for a pending pod"),
    "ScaleDown": ("tab:red", "node removed"),
}
EXTERNAL_METRIC_LABEL = "HPA external metric / replica"


def read_events(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def column(rows: Rows, name: str) -> list[float]:
    return [float("nan") if row.get(name) is None else float(row[name]) for row in rows]


def requests_per_second(rows: Rows) -> list[float]:
    """offered_rps, 0 while no users are on: a stopped Locust's last rate was recorded in
    timelines made before the readers dropped it. With users on, a sample taken before Locust
    refreshed its numbers holds its last rate, not 0 (tooling.loadgen.live_stats)."""
    return [
        0.0 if row.get("users") == 0 else value
        for row, value in zip(rows, column(rows, "offered_rps"), strict=True)
    ]


def latency_series(rows: Rows) -> tuple[str, list[float]]:
    """p95 where real Locust measured it, else the load model's response time."""
    if any(row.get("p95_ms") is not None for row in rows):
        return "p95 latency (ms)", column(rows, "p95_ms")
    return "response time, load model (ms)", column(rows, "response_ms")


def spans_where(
    rows: Rows, holds: Callable[[dict[str, float | None]], bool]
) -> list[tuple[float, float]]:
    """[start, end) time spans of the rows where `holds(row)` (a row lasts until the next)."""
    spans: list[tuple[float, float]] = []
    for row, later in itertools.pairwise(rows):
        if holds(row):
            start, end = float(row["t_seconds"]), float(later["t_seconds"])
            if spans and spans[-1][1] == start:
                start = spans.pop()[0]
            spans.append((start, end))
    return spans


def pending_spans(rows: Rows) -> list[tuple[float, float]]:
    """When some pod was Pending."""
    return spans_where(rows, lambda row: bool(row.get("pods_pending")))


def unreachable_spans(rows: Rows) -> list[tuple[float, float]]:
    """When the API server did not answer (the cluster's cells are blank)."""
    return spans_where(rows, lambda row: row.get("replicas_ready") is None)


def mark_events(axes: Sequence, events: list[dict[str, str]]) -> None:
    labelled: set[str] = set()
    for event in events:
        style = EVENT_STYLES.get(event["reason"])
        if style is None:
            continue
        color, label = style
        for index, ax in enumerate(axes):
            show = index == 0 and label not in labelled
            ax.axvline(
                float(event["t_seconds"]),
                color=color,
                alpha=0.35,
                linewidth=1,
                label=label if show else None,
                gid=f"event:{event['reason']}",
            )
        labelled.add(label)


def plot_timeline(
    rows: Rows, events: list[dict[str, str]], title: str, slo_ms: float = 1000.0
) -> Figure:
    """The four-panel picture of one run."""
    figure, axes = pyplot.subplots(4, 1, sharex=True, figsize=(11, 11), constrained_layout=True)
    load, latency, replicas, nodes = axes
    t = column(rows, "t_seconds")
    figure.suptitle(title)

    load.step(t, column(rows, "users"), where="post", label="users", color="tab:blue")
    load.set_ylabel("users")
    rate = load.twinx()
    rate.plot(t, requests_per_second(rows), label="requests/s", color="tab:orange")
    rate.set_ylabel("requests/s")

    name, values = latency_series(rows)
    latency.plot(t, values, label=name, color="tab:brown")
    if any(row.get("p50_ms") is not None for row in rows):
        latency.plot(t, column(rows, "p50_ms"), label="p50 latency (ms)", color="tab:olive")
    latency.axhline(slo_ms, color="black", linestyle="--", label=f"SLO {slo_ms:.0f} ms")
    latency.set_ylabel("ms")
    handles = latency.get_legend_handles_labels()[0]
    if any(row.get("failures") is not None for row in rows):
        failed = latency.twinx()
        failed.step(
            t, column(rows, "failures"), where="post", label="failed requests", color="tab:red"
        )
        failed.set_ylabel("failed requests (total)")
        # whole requests from 0, at least to 1: with none failed, autoscaling drew 0 to 0.055
        counts = [value for value in column(rows, "failures") if value >= 0]  # NaN: blank
        failed.set_ylim(0, max(1.0, *counts) * 1.05)
        failed.yaxis.set_major_locator(MaxNLocator(integer=True))
        handles += failed.get_legend_handles_labels()[0]
    latency.legend(handles=handles, loc="upper left", fontsize="small")

    for index, (start, end) in enumerate(pending_spans(rows)):
        label = "pods pending" if index == 0 else None
        replicas.axvspan(start, end, color="tab:red", alpha=0.15, label=label, gid="pending")
    replicas.step(t, column(rows, "replicas_desired"), where="post", label="desired")
    replicas.step(t, column(rows, "replicas_ready"), where="post", label="ready")
    replicas.set_ylabel("replicas")
    handles = replicas.get_legend_handles_labels()[0]
    if scaled_on_an_external_metric(rows):
        signal = replicas.twinx()
        signal.plot(
            t,
            column(rows, "hpa_external_value"),
            label="HPA external metric (per replica)",
            color="tab:cyan",
            gid="hpa-external",
        )
        signal.set_ylabel(EXTERNAL_METRIC_LABEL)
        signal.set_ylim(bottom=0)
        handles += signal.get_legend_handles_labels()[0]
    replicas.legend(handles=handles, loc="upper left")

    nodes.step(t, column(rows, "nodes_ready"), where="post", label="nodes ready", color="tab:gray")
    nodes.set_ylabel("nodes")
    nodes.set_xlabel("seconds")

    for index, (start, end) in enumerate(unreachable_spans(rows)):
        for ax in (replicas, nodes):
            label = "API server unreachable" if index == 0 and ax is nodes else None
            ax.axvspan(start, end, color="tab:gray", alpha=0.25, label=label, gid="unreachable")
    mark_events([load, latency, replicas, nodes], events)
    load.legend(
        handles=load.get_legend_handles_labels()[0] + rate.get_legend_handles_labels()[0],
        loc="upper left",
        fontsize="small",
    )
    nodes.legend(loc="upper left")
    for ax in axes:
        ax.grid(alpha=0.3)
    for ax in (replicas, nodes):
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylim(bottom=0)
    return figure


def latency_column(rows: Rows) -> tuple[str, list[float]]:
    """Locust's p95 where it was measured, else the load model's response time."""
    if any(row.get("p95_ms") is not None for row in rows):
        return "p95", column(rows, "p95_ms")
    return "response", column(rows, "response_ms")


def plot_comparison(runs: dict[str, Rows], slo_ms: float = 1000.0) -> Figure:
    """Runs overlaid: users, latency against the SLO, replicas ready, nodes ready (one line
    per run)."""
    figure, axes = pyplot.subplots(4, 1, sharex=True, figsize=(11, 10), constrained_layout=True)
    figure.suptitle("runs compared")
    labels = {}
    for (name, rows), color in zip(
        runs.items(), matplotlib.colormaps["tab10"].colors, strict=False
    ):
        t = column(rows, "t_seconds")
        kind, latency = latency_column(rows)
        labels[kind] = True
        axes[1].step(t, latency, where="post", label=name, color=color)
        for ax, series in (
            (axes[0], "users"),
            (axes[2], "replicas_ready"),
            (axes[3], "nodes_ready"),
        ):
            ax.step(t, column(rows, series), where="post", label=name, color=color)
    axes[1].axhline(slo_ms, color="tab:red", linestyle="--", linewidth=1, label="SLO")
    latency_label = " / ".join(labels) + " (ms)"
    for ax, label in zip(
        axes, ("users", latency_label, "replicas ready", "nodes ready"), strict=True
    ):
        ax.set_ylabel(label)
        if ax is not axes[1]:
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(loc="upper left")
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("seconds")
    return figure


def save(figure: Figure, path: Path) -> Path:
    figure.savefig(path, dpi=100)
    pyplot.close(figure)
    return path
