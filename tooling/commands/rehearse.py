"""`resnet-serving rehearse`: the autoscaling story on the local rehearsal cluster (real control
plane, kwok-simulated nodes and pods, the real Cluster Autoscaler where it is built), ending
with timeline.csv, events.csv, timeline.png and summary.md in --report. The cluster is deleted
afterwards unless --keep. (`make demo` runs it; `up --provider rehearsal` is the same story
keeping the cluster.)"""

from __future__ import annotations

import argparse

from tooling.commands.cluster import (
    add_pool_arguments,
    add_rehearsal_arguments,
    owned_rehearsal,
    rehearsal_spec,
)
from tooling.commands.up import add_run_arguments, run_spec
from tooling.console import say


def register(verbs: argparse._SubParsersAction) -> None:
    parser = verbs.add_parser("rehearse", help="run the local rehearsal", description=__doc__)
    add_rehearsal_arguments(parser)
    add_pool_arguments(parser)
    add_run_arguments(parser, "runs/rehearsal-<time>")
    parser.add_argument("--name", default="resnet-rehearsal", help="cluster name")
    parser.add_argument(
        "--keep",
        "--keep-cluster",
        dest="keep",
        action="store_true",
        help="leave the cluster running afterwards (--keep-cluster is an older name)",
    )
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from tooling.providers import provider
    from tooling.up_down import up

    run = run_spec(args, "rehearsal-%Y%m%d-%H%M%S", down=not args.keep)
    cluster = rehearsal_spec(args, run.run_dir / "kubeconfig", name=args.name)
    with owned_rehearsal("rehearsal", args.name, run.run_dir):  # before anything starts
        result = up(provider("rehearsal"), cluster, run, say)
    print(result.timeline)
    if args.keep:
        say(f"rehearse: {args.name} runs on: export KUBECONFIG={cluster.kubeconfig.resolve()}")
    return 0 if result.scaled_in else 1
