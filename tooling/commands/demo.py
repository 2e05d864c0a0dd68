"""`resnet-serving demo`: the main job, the local rehearsal cluster (arrives with issue 4)."""

from __future__ import annotations

import argparse
import sys


def register(verbs: argparse._SubParsersAction) -> None:
    parser = verbs.add_parser("demo", help="run the local rehearsal (arrives with issue 4)")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    print(
        "resnet-serving demo: the local rehearsal cluster is not built yet (issue 4).\n"
        "Today: `make test` renders both charts with helm v4 and v3 and validates them;\n"
        "`helm install` them into your cluster as charts/*/README.md shows.",
        file=sys.stderr,
    )
    return 2
