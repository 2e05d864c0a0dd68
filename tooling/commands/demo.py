"""`resnet-serving demo`: the main job, the local rehearsal with the fast profile."""

from __future__ import annotations

import argparse

from tooling.commands import rehearse


def register(verbs: argparse._SubParsersAction) -> None:
    parser = verbs.add_parser("demo", help="the main job: `rehearse` with the fast profile")
    rehearse.add_arguments(parser)
    parser.set_defaults(handler=rehearse.handle)
