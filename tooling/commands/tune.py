"""`resnet-serving tune`: the rehearsal over a few configurations of the chart on one load
shape, then a table and a plot side by side: seconds over the SLO, worst p95, failures,
replica-minutes, node-minutes and the first scale-out per configuration, the Pareto-best marked
(tune.md, tune.csv, tune.png, and compare/ with the runs' timelines overlaid).

A configuration is a values file (--values FILE, once per configuration) or a point of a grid
over chart keys (--grid KEY=V1,V2, laid over --base-values, the lab's by default). Each run is
`resnet-serving rehearse` in its own process, with its own cluster, into REPORT/NAME."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from tooling.commands.cluster import add_pool_arguments, add_rehearsal_arguments
from tooling.commands.inputs import check_load, values_file, values_file_type
from tooling.commands.up import add_load_arguments
from tooling.console import say
from tooling.paths import LAB_VALUES


def register(verbs: argparse._SubParsersAction) -> None:
    parser = verbs.add_parser(
        "tune", help="the rehearsal over several configurations, compared", description=__doc__
    )
    parser.add_argument(
        "--values",
        type=values_file,
        action="append",
        default=[],
        help="a configuration's values file",
    )
    parser.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="KEY=V1,V2",
        help="a chart key and its values to try (repeat: every combination is a configuration)",
    )
    parser.add_argument(
        "--base-values",
        type=values_file_type("--base-values"),
        action="append",
        help="values under every grid point (default: the lab's, ci/lab-values.yaml)",
    )
    shared = add_load_arguments(parser)  # rehearse's own flags, passed through to each run
    parser.add_argument(
        "--parallel",
        type=int,
        default=1,
        help="rehearsals side by side (1; each with real Locust wants about 2 cores, and runs "
        "sharing too few cores slow each other's Locust)",
    )
    parser.add_argument("--slo-ms", type=float, default=1000.0, help="latency SLO (1000 ms)")
    parser.add_argument("--report", type=Path, help="output folder (default runs/tune-<time>)")
    shared += add_rehearsal_arguments(parser) + add_pool_arguments(parser)
    parser.set_defaults(handler=handle, rehearse_flags=tuple(shared))


def rehearse_arguments(args: argparse.Namespace) -> list[str]:
    """The flags tune shares with `rehearse` (defined once, in tooling.commands.up and
    .cluster), each as parsed, for every configuration's `rehearse`."""
    forwarded: list[str] = []
    for action in args.rehearse_flags:
        value = getattr(args, action.dest)
        if value is not None:
            forwarded += [action.option_strings[0], str(value)]
    return forwarded


def handle(args: argparse.Namespace) -> int:
    from tooling.errors import UserError
    from tooling.tuning.configurations import configurations, parse_axis
    from tooling.tuning.results import node_autoscalers, write_results
    from tooling.tuning.runner import run_all

    if args.parallel < 1:
        raise UserError(f"--parallel {args.parallel}: give 1 or more")
    # what every configuration's `rehearse` will check, checked once before any starts
    from tooling.loadgen.load_shapes import load_variables
    from tooling.rehearsal.node_autoscalers import NodePool
    from tooling.runs.run_spec import LoadSpec

    NodePool(args.min_nodes, args.max_nodes, args.autoscaling_profile)
    variables = load_variables(os.environ)
    check_load(LoadSpec(args.shape, args.step_seconds, source=args.load, variables=variables))
    out_dir = args.report or Path("runs") / time.strftime("tune-%Y%m%d-%H%M%S")
    base = tuple(args.base_values or (LAB_VALUES,))
    found = configurations(
        args.values, [parse_axis(text) for text in args.grid], base, out_dir / "configurations"
    )
    cores = os.cpu_count() or 1
    say(
        f"tune: {len(found)} configurations on the {args.shape} shape, {args.parallel} at a time "
        f"({cores} cores here) → {out_dir}"
    )
    outcomes = run_all(found, out_dir, rehearse_arguments(args), args.parallel, say)
    table, rows = write_results(
        outcomes, out_dir, args.slo_ms, f"tune: {args.shape} shape, load {args.load}"
    )
    print(table)
    say(f"tune: node autoscaler: {node_autoscalers(rows)}")
    say(f"tune: ✓ {out_dir / 'tune.md'}, tune.png, tune.csv")
    return 0 if all(row.summary is not None for row in rows) else 1
