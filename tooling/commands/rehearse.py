"""`resnet-serving rehearse`: the autoscaling story on the local rehearsal cluster (real control
plane, kwok-simulated nodes and pods), ending with timeline.csv and events.csv in --run-dir."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

from tooling.commands.cluster import add_node_autoscaling_arguments
from tooling.loadgen.load_shapes import SHAPE_NAMES


def register(verbs: argparse._SubParsersAction) -> None:
    parser = verbs.add_parser("rehearse", help="run the local rehearsal", description=__doc__)
    add_arguments(parser)
    parser.set_defaults(handler=handle)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--profile", default="fast", help="fast (compressed timers, the default) or lab"
    )
    parser.add_argument("--shape", default="step", help=f"load shape: {', '.join(SHAPE_NAMES)}")
    parser.add_argument(
        "--step-seconds",
        type=float,
        help="seconds per step of the step shape (default: 60 for lab, 8 for fast)",
    )
    parser.add_argument(
        "--values",
        type=Path,
        action="append",
        help="resnet-serving values file(s) (default: the lab's, ci/lab-values.yaml)",
    )
    parser.add_argument("--name", default="resnet-rehearsal", help="cluster name")
    pool = parser.add_argument_group("node pool")
    pool.add_argument("--min-nodes", type=int, default=1, help="node pool minimum (1)")
    pool.add_argument("--max-nodes", type=int, default=3, help="node pool maximum (3)")
    add_node_autoscaling_arguments(pool)
    parser.add_argument(
        "--report",
        "--run-dir",
        dest="run_dir",
        type=Path,
        help="where timeline.csv, events.csv and summary.txt go (default: runs/rehearsal-<time>)",
    )
    parser.add_argument(
        "--keep",
        "--keep-cluster",
        dest="keep_cluster",
        action="store_true",
        help="leave the cluster running afterwards",
    )


def handle(args: argparse.Namespace) -> int:
    from tooling.loadgen.load_shapes import shape_from_spec
    from tooling.rehearsal.node_autoscalers import NodePool
    from tooling.rehearsal.profiles import profile
    from tooling.rehearsal.rehearse import RehearsalSpec, rehearse

    chosen = profile(args.profile)
    environ = dict(os.environ)
    if args.step_seconds:  # the flag wins, then STEP_SECONDS, then the profile's pace
        environ["STEP_SECONDS"] = str(args.step_seconds)
    environ.setdefault("STEP_SECONDS", "60" if chosen.name == "lab" else "8")
    shape = shape_from_spec(args.shape, environ)
    run_dir = args.run_dir or Path("runs") / time.strftime("rehearsal-%Y%m%d-%H%M%S")
    spec = RehearsalSpec(
        run_dir=run_dir,
        profile=chosen,
        shape=shape,
        pool=NodePool(args.min_nodes, args.max_nodes, args.autoscaling_profile),
        node_autoscaler=args.node_autoscaler,
        cluster_name=args.name,
        keep_cluster=args.keep_cluster,
    )
    if args.values:
        spec = dataclasses.replace(spec, values_files=tuple(args.values))
    result = rehearse(spec, say=lambda line: print(line, file=sys.stderr, flush=True))
    print(result.timeline)
    return 0 if result.scaled_in else 1
