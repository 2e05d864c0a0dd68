"""`resnet-serving up|down`: a cluster, the model, both charts and a load run, ending with
timeline.csv, events.csv and summary.txt in --report; `down` removes what `up` made.

--provider rehearsal (default) is the local rehearsal; kind and gke run real TF Serving pods and
real Locust load. `up --provider gke --dry-run` prints every resource it would create.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from tooling.commands.cluster import add_cluster_arguments
from tooling.loadgen.load_shapes import SHAPE_NAMES


def say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def register(verbs: argparse._SubParsersAction) -> None:
    up = verbs.add_parser(
        "up", help="cluster → model → charts → load → report", description=__doc__
    )
    add_cluster_arguments(up)
    up.add_argument("--model-uri", default="", help="gs://… or https://….tar.gz (skips upload)")
    up.add_argument(
        "--bucket", default="", help="gke: model bucket (default PROJECT-resnet-serving)"
    )
    up.add_argument("--weights", default="random", help="gke: exported weights, random or imagenet")
    up.add_argument("--values", type=Path, action="append", help="resnet-serving values file(s)")
    up.add_argument("--shape", default="step", help=f"load shape: {', '.join(SHAPE_NAMES)}")
    up.add_argument("--step-seconds", type=float, help="seconds per step (60 on clusters)")
    up.add_argument("--workers", type=int, default=2, help="Locust workers (2)")
    up.add_argument("--profile", default="fast", help="rehearsal: fast or lab timings")
    up.add_argument("--report", type=Path, help="run directory (default runs/up-<time>)")
    up.add_argument("--down", action="store_true", help="run `down --yes` at the end")
    up.add_argument("--dry-run", action="store_true", help="gke: print what would be created")
    up.set_defaults(handler=handle_up)
    down = verbs.add_parser("down", help="uninstall and delete what `up` created")
    add_cluster_arguments(down)
    down.add_argument("--model-uri", default="", help="as given to up (then nothing is deleted)")
    down.add_argument(
        "--bucket", default="", help="gke: model bucket (default PROJECT-resnet-serving)"
    )
    down.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    down.set_defaults(handler=handle_down)


def handle_up(args: argparse.Namespace) -> int:
    args.report = args.report or Path("runs") / time.strftime("up-%Y%m%d-%H%M%S")
    if args.workers < 1:
        raise ValueError("--workers must be at least 1")
    if args.dry_run:
        from tooling.up import dry_run_lines

        print("\n".join(dry_run_lines(args)))
        return 0
    if args.provider == "rehearsal":
        return rehearse_instead(args)
    from tooling.up import run_up

    return run_up(args, say)


def rehearse_instead(args: argparse.Namespace) -> int:
    """On the rehearsal cluster, `up` is `rehearse` (kept running unless --down)."""
    from tooling.commands.rehearse import handle

    rehearse_args = argparse.Namespace(
        profile=args.profile,
        shape=args.shape,
        step_seconds=args.step_seconds,
        values=args.values,
        min_nodes=args.min_nodes,
        max_nodes=args.max_nodes,
        autoscaling_profile=args.autoscaling_profile,
        node_autoscaler=args.node_autoscaler,
        name=args.name or "resnet-rehearsal",
        run_dir=args.report,
        keep_cluster=not args.down,
    )
    return handle(rehearse_args)


def handle_down(args: argparse.Namespace) -> int:
    from tooling.up import run_down

    def confirm(question: str) -> bool:
        if not sys.stdin.isatty():
            say("down: not a terminal, so nothing is deleted without --yes")
            return False
        return input(question).strip().lower() in ("y", "yes")

    return run_down(args, say, confirm)
