"""`resnet-serving report RUN_DIR` and `compare RUN_A RUN_B …`: pictures and numbers of runs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(verbs: argparse._SubParsersAction) -> None:
    report = verbs.add_parser(
        "report", help="timeline.png and summary.md for a run directory", description=__doc__
    )
    report.add_argument("run_dir", type=Path, help="a run directory with timeline.csv")
    report.add_argument("--slo-ms", type=float, default=1000.0, help="latency SLO (1000 ms)")
    report.set_defaults(handler=handle_report)
    compare = verbs.add_parser(
        "compare", help="runs side by side: compare.md and compare.png", description=__doc__
    )
    compare.add_argument("run_dirs", type=Path, nargs="+", help="two or more run directories")
    compare.add_argument("--out", type=Path, default=Path("runs/compare"), help="output folder")
    compare.add_argument("--slo-ms", type=float, default=1000.0, help="latency SLO (1000 ms)")
    compare.set_defaults(handler=handle_compare)


def handle_report(args: argparse.Namespace) -> int:
    from tooling.report.run_report import write_report

    report = write_report(args.run_dir, args.slo_ms)
    print("\n".join(report.summary.lines()))
    print(f"report: ✓ {report.picture} and {report.markdown}", file=sys.stderr)
    return 0


def handle_compare(args: argparse.Namespace) -> int:
    from tooling.report.run_report import compare_runs

    table, picture = compare_runs(args.run_dirs, args.out, args.slo_ms)
    print(table)
    print(f"compare: ✓ {picture} and {args.out / 'compare.md'}", file=sys.stderr)
    return 0
