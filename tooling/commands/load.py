"""`resnet-serving load run`: a distributed, headless Locust run (master + N workers) against
a model server, ending with Locust's CSV and HTML report in --report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tooling.commands.inputs import check_host
from tooling.errors import UserError
from tooling.loadgen.load_shapes import SHAPE_NAMES


def register(verbs: argparse._SubParsersAction) -> None:
    parser = verbs.add_parser("load", help="load a model server with distributed Locust")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    run = actions.add_parser(
        "run", help="run master + workers headless to the end", description=__doc__
    )
    run.add_argument("--host", required=True, help="http://HOST:8501 (REST) or HOST:8500 (gRPC)")
    run.add_argument(
        "--shape",
        default="step",
        help=f"load shape: {', '.join(SHAPE_NAMES)}, or none for fixed --users (step)",
    )
    run.add_argument("--workers", type=int, default=1, help="Locust worker processes (1)")
    run.add_argument("--run-time", default="11m", help="longest run, e.g. 20s, 5m (11m)")
    run.add_argument("--report", type=Path, required=True, help="directory for CSV/HTML results")
    run.add_argument("--users", type=int, default=4, help="users with --shape none (4)")
    run.add_argument("--spawn-rate", type=float, default=2.0, help="users started per second (2)")
    run.add_argument("--protocol", choices=("rest", "grpc"), default="rest")
    run.add_argument("--model-name", default="image_classifier")
    run.add_argument("--signature-name", default="serving_default")
    run.set_defaults(handler=handle_run)


def handle_run(args: argparse.Namespace) -> int:
    from tooling.loadgen.load_shapes import shape_from_spec
    from tooling.loadgen.run import LoadRunSpec, run_load

    if args.workers < 1:
        raise UserError("--workers must be at least 1")
    check_host(args.host, args.protocol)
    if args.users < 1:
        raise UserError(f"--users {args.users}: give 1 or more")
    if args.spawn_rate <= 0:
        raise UserError(
            f"--spawn-rate {args.spawn_rate:g}: give a number of users per second above 0"
        )
    shape = None if args.shape == "none" else args.shape
    if shape:
        try:
            shape_from_spec(shape)  # a bad shape fails here, with the list of good ones
        except (ValueError, OSError) as error:
            raise UserError(f"--shape {shape}: {error}") from error
    result = run_load(
        LoadRunSpec(
            host=args.host,
            report_dir=args.report,
            shape=shape,
            workers=args.workers,
            run_time=args.run_time,
            users=args.users,
            spawn_rate=args.spawn_rate,
            protocol=args.protocol,
            model_name=args.model_name,
            signature_name=args.signature_name,
        ),
        say=lambda line: print(line, file=sys.stderr, flush=True),
    )
    print(result.summary)
    return 0 if result.failures == 0 and result.exit_code == 0 else 1
