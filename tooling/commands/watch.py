"""`resnet-serving watch`: users, req/s, p50/p95, replicas, pending pods, nodes and HPA CPU of
the deployment, refreshed in place and appended to REPORT/timeline.csv (Ctrl-C ends it)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tooling.errors import UserError
from tooling.providers.base import DEFAULT_KUBECONFIG


def register(verbs: argparse._SubParsersAction) -> None:
    parser = verbs.add_parser(
        "watch", help="live view of a run, appended to timeline.csv", description=__doc__
    )
    parser.add_argument("--kubeconfig", type=Path, default=DEFAULT_KUBECONFIG)
    parser.add_argument(
        "--report",
        "--run-dir",
        dest="report",
        type=Path,
        default=Path("runs/watch"),
        help="the run directory where timeline.csv grows (--run-dir is an older name)",
    )
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between samples (5)")
    parser.add_argument("--samples", type=int, help="stop after this many (default: until Ctrl-C)")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from tooling.runs.watch import watch

    if not args.kubeconfig.is_file():
        raise UserError(
            f"no kubeconfig at {args.kubeconfig}: give --kubeconfig, or create a cluster with "
            "`resnet-serving cluster create`"
        )
    recorder = watch(args.kubeconfig, args.report, args.interval, args.samples)
    print(f"watch: {len(recorder.rows)} samples appended to {recorder.timeline}", file=sys.stderr)
    return 0
