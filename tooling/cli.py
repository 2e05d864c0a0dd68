"""`resnet-serving`: the command line. Each verb is a small module in tooling/commands."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from tooling.commands import (
    calibrate,
    chart_docs,
    cluster,
    demo,
    load,
    model,
    rehearse,
    report,
    serve_local,
    up,
    watch,
)
from tooling.errors import UserError

VERBS = (
    model,
    serve_local,
    load,
    calibrate,
    cluster,
    up,
    rehearse,
    report,
    watch,
    chart_docs,
    demo,
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
    """Parses `argv` and runs the verb; returns the exit code (testable without exiting)."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except (UserError, FileNotFoundError, FileExistsError, ValueError, RuntimeError) as error:
        print(f"resnet-serving: {error}", file=sys.stderr)
        return 2


def main() -> None:
    # TensorFlow's C++ start-up chatter (CPU features, oneDNN) hides the CLI's own lines.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.exit(run())


if __name__ == "__main__":
    main()
