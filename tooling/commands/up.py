"""`resnet-serving up|down`: a cluster, the model, both charts and a load run, ending with
timeline.csv, events.csv, timeline.png and summary.md in --report; `down` removes what `up`
made.

--provider rehearsal (default) is the local rehearsal (as `rehearse`, but the cluster is kept
unless --down); kind and gke run real TF Serving pods and real Locust load.
`up --provider gke --dry-run` prints every resource it would create.
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
import time
from pathlib import Path

from tooling.commands.cluster import add_cluster_arguments, cluster_spec, owned_rehearsal
from tooling.commands.inputs import check_load, values_file
from tooling.console import say
from tooling.loadgen.load_shapes import (
    SHAPE_FIELDS,
    SHAPE_NAMES,
    WAIT_DEFAULTS,
    WAIT_VARIABLES,
    load_variables,
)
from tooling.paths import LAB_VALUES
from tooling.providers import LoadSpec, RunSpec
from tooling.runs.run_spec import LOAD_SOURCES


def add_run_arguments(parser: argparse.ArgumentParser, default_report: str) -> None:
    """What runs on the cluster: values, the load, and where the run directory goes."""
    parser.add_argument(
        "--values",
        type=values_file,
        action="append",
        help="resnet-serving values file(s) (default: the lab's, ci/lab-values.yaml)",
    )
    add_load_arguments(parser)
    parser.add_argument(
        "--report",
        "--run-dir",
        dest="report",
        type=Path,
        help=f"the run directory: timeline.csv, events.csv, timeline.png, summary.md "
        f"(default {default_report}; --run-dir is an older name for --report)",
    )


def add_load_arguments(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """The load: its shape, its source in the rehearsal, the step shape's step; the shapes'
    environment variables go into --help. Returns the flags added."""
    parser.epilog = load_variables_help()
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    return [
        parser.add_argument(
            "--shape", default="step", help=f"load shape: {', '.join(SHAPE_NAMES)}"
        ),
        parser.add_argument(
            "--load",
            choices=LOAD_SOURCES,
            default="locust",
            help="rehearsal: real Locust against the replica fleet (locust), or the analytical "
            "load model (model: for runs too large for one machine)",
        ),
        parser.add_argument(
            "--step-seconds",
            type=float,
            help="seconds per step of the step shape (rehearsal: 8 fast, 60 lab; clusters: 60)",
        ),
    ]


def load_variables_help() -> str:
    """The environment variables the load reads, each with its default, for --help."""
    lines = ["environment variables (read when the flags are; Locust is given them):"]
    for shape_type, (name, variables) in SHAPE_FIELDS.items():
        defaults = shape_type()
        listed = ", ".join(f"{key}={getattr(defaults, attr):g}" for key, attr in variables.items())
        lines.append(f"{name} shape: {listed}")
    waits = ", ".join(f"{key}={WAIT_DEFAULTS[key]:g}" for key in WAIT_VARIABLES)
    lines.append(f"users' wait between requests, seconds: {waits}")
    lines.append("(--step-seconds wins over STEP_SECONDS)")
    wrap = textwrap.TextWrapper(width=78, initial_indent="  ", subsequent_indent="      ")
    return "\n".join([lines[0], *(wrap.fill(line) for line in lines[1:])])


def run_spec(args: argparse.Namespace, default_report: str, down: bool) -> RunSpec:
    """The run the flags describe, every input checked (nothing has started yet)."""
    run = RunSpec(
        run_dir=args.report or Path("runs") / time.strftime(default_report),
        load=LoadSpec(
            args.shape,
            args.step_seconds,
            getattr(args, "workers", 2),
            args.load,
            load_variables(os.environ),  # the one place the load's environment is read
        ),
        values_files=tuple(args.values) if args.values else (LAB_VALUES,),
        model_uri=getattr(args, "model_uri", ""),
        down=down,
    )
    check_load(run.load)
    return run


def register(verbs: argparse._SubParsersAction) -> None:
    up = verbs.add_parser(
        "up", help="cluster → model → charts → load → report", description=__doc__
    )
    add_cluster_arguments(up)
    add_run_arguments(up, "runs/up-<time>")
    up.add_argument("--model-uri", default="", help="gs://… or https://….tar.gz (skips upload)")
    up.add_argument(
        "--bucket", default="", help="gke: model bucket (default PROJECT-resnet-serving)"
    )
    up.add_argument("--weights", default="random", help="gke: exported weights, random or imagenet")
    up.add_argument("--workers", type=int, default=2, help="Locust workers on clusters (2)")
    up.add_argument("--down", action="store_true", help="delete what `up` made at the end")
    up.add_argument("--dry-run", action="store_true", help="gke: print what would be created")
    up.add_argument(
        "--prometheus",
        default="",
        help="gke, values in KEDA mode: where KEDA's trigger reads, gmp (Managed Service for "
        "Prometheus) or a Prometheus URL in the cluster (default: the values' serverAddress)",
    )
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
    from tooling.errors import UserError
    from tooling.providers import PlansResources, provider
    from tooling.up_down import up

    chosen = provider(args.provider)
    cluster, run = cluster_spec(args), run_spec(args, "up-%Y%m%d-%H%M%S", args.down)
    if args.provider == "gke" and not run.model_uri:
        from tooling.model.export import check_weights

        check_weights(args.weights)  # before the cluster is made, not after
    if args.prometheus:
        from tooling.providers.gke import with_prometheus

        cluster = with_prometheus(cluster, args.prometheus)
    if args.dry_run:
        if not isinstance(chosen, PlansResources):
            raise UserError("--dry-run describes GKE resources; use it with --provider gke")
        print("\n".join(chosen.plan(cluster, run)))
        return 0
    with owned_rehearsal(args.provider, args.name, run.run_dir):
        result = up(chosen, cluster, run, say)
    print(result.timeline)
    return 0 if result.scaled_in else 1


def handle_down(args: argparse.Namespace) -> int:
    from tooling.providers import provider
    from tooling.up_down import down

    def confirm(question: str) -> bool:
        if args.yes:
            return True
        if not sys.stdin.isatty():
            say("down: not a terminal, so nothing is deleted without --yes")
            return False
        return input(question).strip().lower() in ("y", "yes")

    run = RunSpec(Path("runs"), model_uri=args.model_uri)
    cluster = cluster_spec(args)
    with owned_rehearsal(args.provider, args.name):  # not from under a running run
        return 0 if down(provider(args.provider), cluster, run, say, confirm) else 1
