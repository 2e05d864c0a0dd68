"""`report`: a run directory's timeline.csv and events.csv → timeline.png and summary.md (and
summary.txt); `compare`: several runs side by side → compare.md and compare.png."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from tooling.errors import UserError
from tooling.report.run_info import node_autoscaler_text, read_run_info, scaling_signal_text
from tooling.report.summary import DEFAULT_SLO_MS, TimelineSummary, read_timeline, summarize


@dataclass(frozen=True)
class Report:
    summary: TimelineSummary
    picture: Path
    markdown: Path


def read_run(run_dir: Path) -> list[dict[str, float | None]]:
    timeline = run_dir / "timeline.csv"
    if not timeline.is_file():
        raise UserError(
            f"{run_dir} has no timeline.csv: give a run directory made by `rehearse`, `up` "
            "or `watch`"
        )
    return read_timeline(timeline)


def run_summary(run_dir: Path, slo_ms: float = DEFAULT_SLO_MS) -> TimelineSummary:
    """The run's timeline summed up, naming its node autoscaler and its scaling signal (from
    run.json)."""
    summary = summarize(read_run(run_dir), slo_ms)
    info = read_run_info(run_dir)
    return dataclasses.replace(
        summary,
        node_autoscaler=node_autoscaler_text(info),
        scaling_signal=scaling_signal_text(info),
    )


def write_report(run_dir: Path, slo_ms: float = DEFAULT_SLO_MS) -> Report:
    # matplotlib loads here, not with the module: `serve-local` shares the CLI's imports, and
    # in the read-only model-server container it has no home to cache fonts in.
    from tooling.report.timeline_plot import plot_timeline, read_events, save

    rows = read_run(run_dir)
    summary = run_summary(run_dir, slo_ms)
    picture = save(
        plot_timeline(rows, read_events(run_dir / "events.csv"), run_dir.name, slo_ms),
        run_dir / "timeline.png",
    )
    markdown = run_dir / "summary.md"
    markdown.write_text(summary.markdown(run_dir.name) + "\n![timeline](timeline.png)\n")
    (run_dir / "summary.txt").write_text("\n".join(summary.lines()) + "\n")
    return Report(summary, picture, markdown)


def comparison_table(summaries: dict[str, TimelineSummary]) -> str:
    """Markdown: one row per metric, one column per run."""
    names = list(summaries)
    metrics = [summary.metrics() for summary in summaries.values()]
    lines = [
        "| metric | " + " | ".join(names) + " |",
        "| --- |" + " --- |" * len(names),
    ]
    for index, (metric, _) in enumerate(metrics[0]):
        lines.append(f"| {metric} | " + " | ".join(m[index][1] for m in metrics) + " |")
    return "\n".join(lines) + "\n"


def compare_runs(
    run_dirs: list[Path], out_dir: Path, slo_ms: float = DEFAULT_SLO_MS
) -> tuple[str, Path]:
    if len(run_dirs) < 2:
        raise UserError("compare needs two or more run directories")
    names = [run_dir.name for run_dir in run_dirs]
    if len(set(names)) != len(names):
        names = [str(run_dir) for run_dir in run_dirs]
    named = dict(zip(names, run_dirs, strict=True))
    runs = {name: read_run(run_dir) for name, run_dir in named.items()}
    table = comparison_table(
        {name: run_summary(run_dir, slo_ms) for name, run_dir in named.items()}
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    from tooling.report.timeline_plot import plot_comparison, save

    picture = save(plot_comparison(runs, slo_ms), out_dir / "compare.png")
    (out_dir / "compare.md").write_text(f"# runs compared\n\n{table}\n![runs](compare.png)\n")
    return table, picture
