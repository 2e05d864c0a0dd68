"""`resnet-serving serve-local`: the exported model behind TF Serving's REST and gRPC APIs,
on the TF runtime, where no tensorflow/serving container can run. Takes TF Serving's flags."""

from __future__ import annotations

import argparse
import sys

from tooling.serving.flags import HONOURED, add_model_server_flags, refuse_what_is_not_served


def register(verbs: argparse._SubParsersAction) -> None:
    parser = verbs.add_parser(
        "serve-local",
        help="serve a SavedModel with TF Serving's REST/gRPC APIs on the TF runtime",
        description=__doc__,
    )
    add_model_server_flags(parser)
    parser.set_defaults(
        handler=handle,
        unknown_hint="serve-local is not TF Serving; of its flags it honours "
        + ", ".join(HONOURED),
    )


def handle(args: argparse.Namespace) -> int:
    from tooling.serving.server import serve

    refuse_what_is_not_served(args)
    serve(args, say=lambda line: print(line, file=sys.stderr, flush=True))
    return 0
