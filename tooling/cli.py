"""`resnet-serving`: the command line. Each verb is a small module in tooling/commands."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from tooling.commands import (
    calibrate,
    cluster,
    load,
    model,
    rehearse,
    report,
    serve_local,
    tune,
    up,
    watch,
)
from tooling.errors import UserError, one_line

VERBS = (
    model,
    serve_local,
    load,
    calibrate,
    cluster,
    up,
    rehearse,
    tune,
    report,
    watch,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="resnet-serving",
        description="Deploy, autoscale and load-test ResNet101 on TensorFlow Serving.",
    )
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="COMMAND")
    for verb in VERBS:
        verb.register(verbs)
    return parser


def run(argv: Sequence[str] | None = None) -> int:
    """Parses `argv` and runs the verb; returns the exit code (testable without exiting).

    The one error boundary: a UserError (what the user can fix) is one line and exit 2;
    Ctrl-C is one line and exit 130, after the verb's own clean-up; anything else is a bug
    and keeps its traceback."""
    try:
        try:  # a flag's type check may raise a UserError too (tooling.commands.inputs)
            args, unknown = build_parser().parse_known_args(argv)
        except SystemExit as stop:  # argparse has printed the usage and the error (or --help)
            return int(stop.code or 0)
        if unknown:
            hint = getattr(args, "unknown_hint", f"see `resnet-serving {args.verb} --help`")
            raise UserError(f"{args.verb}: unknown option(s) {' '.join(unknown)}: {hint}")
        return int(args.handler(args) or 0)
    except UserError as error:
        print(f"resnet-serving: {one_line(error, 2000)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("resnet-serving: interrupted; what it started is stopped", file=sys.stderr)
        return 130


def main() -> None:
    sys.exit(run())


if __name__ == "__main__":
    main()
