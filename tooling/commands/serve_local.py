"""`resnet-serving serve-local`: the exported model behind TF Serving's REST and gRPC APIs,
on the TF runtime, where no tensorflow/serving container can run. Takes TF Serving's flags."""

from __future__ import annotations

import argparse
import sys

from tooling.serving.flags import add_model_server_flags


def register(verbs: argparse._SubParsersAction) -> None:
    parser = verbs.add_parser(
        "serve-local",
        help="serve a SavedModel with TF Serving's REST/gRPC APIs on the TF runtime",
        description=__doc__,
    )
    add_model_server_flags(parser)
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from tooling.serving.server import serve

    serve(args, say=lambda line: print(line, file=sys.stderr, flush=True))
    return 0
