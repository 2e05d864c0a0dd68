"""Starts the local model server: loads the models, replays warmup, serves gRPC and REST."""

from __future__ import annotations

import argparse
import signal
import threading
import time
from collections.abc import Callable

from tooling.serving.batching import BatchingParameters
from tooling.serving.core import ModelServer
from tooling.serving.flags import model_configs, prometheus_path
from tooling.serving.grpc_service import make_grpc_server
from tooling.serving.rest import make_rest_server
from tooling.serving.servable import Servable

WARMUP_FILE = "assets.extra/tf_serving_warmup_requests"


def configure_threads(intra: int, inter: int) -> None:
    import tensorflow as tf

    if intra:
        tf.config.threading.set_intra_op_parallelism_threads(intra)
    if inter:
        tf.config.threading.set_inter_op_parallelism_threads(inter)


def replay_warmup(servable: Servable) -> int:
    """Runs the model's warmup records, as TF Serving does on load; returns how many ran."""
    import tensorflow as tf

    from tooling.model.warmup import read_warmup_requests

    path = servable.path / WARMUP_FILE
    if not path.is_file():
        return 0
    logs = read_warmup_requests(path)
    for log in logs:
        request = log.predict_log.request
        inputs = {key: tf.make_ndarray(proto) for key, proto in request.inputs.items()}
        servable.run(request.model_spec.signature_name, inputs)
    return len(logs)


def build_model_server(args: argparse.Namespace, say: Callable[[str], None]) -> ModelServer:
    configure_threads(args.tensorflow_intra_op_parallelism, args.tensorflow_inter_op_parallelism)
    servables = {}
    for config in model_configs(args):
        started = time.perf_counter()
        servable = Servable.load(config.name, config.base_path)
        say(
            f"Loaded servable version {servable.version} of {config.name} from {servable.path} "
            f"in {time.perf_counter() - started:.1f} s"
        )
        if args.enable_model_warmup:
            started = time.perf_counter()
            count = replay_warmup(servable)
            if count:
                say(f"Replayed {count} warmup requests in {time.perf_counter() - started:.1f} s")
        servables[config.name] = servable
    batching = None
    if args.enable_batching:
        batching = (
            BatchingParameters.read(args.batching_parameters_file)
            if args.batching_parameters_file
            else BatchingParameters()
        )
        say(f"Batching on: {batching}")
    return ModelServer(servables, batching)


def serve(args: argparse.Namespace, say: Callable[[str], None] = print) -> None:
    """Serves until SIGINT/SIGTERM."""
    model_server = build_model_server(args, say)
    grpc_server, grpc_port = make_grpc_server(model_server, args.port)
    grpc_server.start()
    say(f"Running gRPC ModelServer at 0.0.0.0:{grpc_port} ...")
    rest_server = None
    if args.rest_api_port:
        rest_server = make_rest_server(
            model_server, args.rest_api_port, prometheus_path(args.monitoring_config_file)
        )
        threading.Thread(target=rest_server.serve_forever, daemon=True).start()
        say(f"Exporting HTTP/REST API at:localhost:{rest_server.server_address[1]} ...")
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    stop.wait()
    say("Shutting down")
    if rest_server:
        rest_server.shutdown()
    grpc_server.stop(grace=5).wait()
    model_server.stop()
