"""`resnet-serving serve-local`: the exported model behind TF Serving's REST and gRPC APIs,
on the TF runtime, where no tensorflow/serving container can run. Takes TF Serving's flags."""

from __future__ import annotations

import argparse

from tooling.console import import_tensorflow, say
from tooling.serving.flags import (
    HONOURED,
    add_model_server_flags,
    check_model_server_flags,
    refuse_what_is_not_served,
)


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
    refuse_what_is_not_served(args)
    check_model_server_flags(args)
    import_tensorflow()
    from tooling.serving.server import serve

    serve(args, say=say)
    return 0
