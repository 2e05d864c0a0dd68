"""P3s: a Locust worker's start, REST user against gRPC user: seconds from the process's launch
to its first request, and its peak memory (RSS). The ratio gRPC ÷ REST is measured in one run.

Before the gRPC user encoded its messages itself (tooling/loadgen/predict_wire.py), its on_start
imported tensorflow-serving-api and with it all of TensorFlow, inside a greenlet: seconds on a
cold machine, longer than a worker's heartbeat, and a TensorFlow process's memory per worker.
`--old-grpc` adds that import to the gRPC user's start, to show what the change saved.

Each user runs in a standalone `locust --headless` process pinned to core 0 (what a worker
runs, without the master); the endpoints, pinned to core 1 in this process's threads, answer
with one valid top-5 prediction and note when their first request came.
Usage: python bench/locust_worker_start.py [--runs 3] [--old-grpc]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import grpc
import psutil
from common import say

from tooling import paths
from tooling.loadgen import LOCUSTFILE, predict_wire

PROBABILITIES = [0.5, 0.2, 0.1, 0.05, 0.01]
PREDICTION = {"classes": [1, 2, 3, 4, 5], "probabilities": PROBABILITIES}


class FirstRequest:
    """When the first request since the last reset arrived (monotonic seconds), or None."""

    def __init__(self) -> None:
        self.at: float | None = None
        self.lock = threading.Lock()

    def seen(self) -> None:
        with self.lock:
            if self.at is None:
                self.at = time.monotonic()


def rest_endpoint(first: FirstRequest) -> tuple[ThreadingHTTPServer, str]:
    body = json.dumps({"predictions": [PREDICTION]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            first.seen()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def grpc_endpoint(first: FirstRequest) -> tuple[grpc.Server, str]:
    from tensorflow_serving.apis import predict_pb2  # the endpoint side may use the real protos

    response = predict_pb2.PredictResponse()
    response.outputs["probabilities"].dtype = 1
    response.outputs["probabilities"].float_val.extend(PROBABILITIES)
    canned = response.SerializeToString()

    def predict(request: bytes, context: grpc.ServicerContext) -> bytes:
        predict_wire.response_outputs(request)  # a well-formed message
        first.seen()
        return canned

    handler = grpc.method_handlers_generic_handler(
        "tensorflow.serving.PredictionService",
        {"Predict": grpc.unary_unary_rpc_method_handler(predict)},
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8), handlers=[handler])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, f"127.0.0.1:{port}"


def old_grpc_locustfile(directory: Path) -> Path:
    """The locustfile with the old start: tensorflow-serving-api imported in on_start."""
    text = LOCUSTFILE.read_text()
    marker = "        import grpc  # the gRPC user needs grpcio; the REST user does not\n"
    assert marker in text, "the gRPC user's on_start changed: update this benchmark"
    old = marker + "        from tensorflow_serving.apis import predict_pb2  # noqa: F401\n"
    path = directory / "locustfile.py"
    path.write_text(text.replace(marker, old))
    for module in LOCUSTFILE.parent.glob("*.py"):
        if module.name != "locustfile.py":
            (directory / module.name).symlink_to(module)
    return path


def one_start(locustfile: Path, protocol: str, host: str, first: FirstRequest) -> tuple[float, int]:
    """Seconds from launch to the first request, and the process's peak RSS in bytes up to 3 s
    of requests later (then the process is stopped)."""
    first.at = None
    env = {**os.environ, "PREDICT_PROTOCOL": protocol, "IMAGES_DIR": str(paths.IMAGES_DIR)}
    env.update(WAIT_MIN="0.1", WAIT_MAX="0.1")
    env.pop("LOAD_SHAPE", None)
    command = ["taskset", "-c", "0", sys.executable, "-m", "locust", "-f", str(locustfile)]
    command += ["--headless", "--users=4", "--spawn-rate=4", "--run-time=120s", f"--host={host}"]
    command += ["--only-summary", "--loglevel=WARNING"]
    launched = time.monotonic()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    watched = psutil.Process(process.pid)
    peak = 0
    while process.poll() is None and (first.at is None or time.monotonic() < first.at + 3):
        with contextlib.suppress(psutil.NoSuchProcess):
            peak = max(peak, watched.memory_info().rss)
        time.sleep(0.05)
    process.terminate()
    _, errors = process.communicate(timeout=30)
    if first.at is None:
        raise SystemExit(
            f"{protocol}: locust exited {process.returncode} without a request: "
            f"{errors.decode()[-800:]}"
        )
    return first.at - launched, peak


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--old-grpc", action="store_true")
    args = parser.parse_args()
    os.sched_setaffinity(0, {1})  # the endpoints' threads
    first = FirstRequest()
    rest, rest_host = rest_endpoint(first)
    grpc_server, grpc_host = grpc_endpoint(first)
    with tempfile.TemporaryDirectory() as scratch:
        cases = {"REST": (LOCUSTFILE, "rest", rest_host), "gRPC": (LOCUSTFILE, "grpc", grpc_host)}
        if args.old_grpc:
            cases["gRPC, old start"] = (old_grpc_locustfile(Path(scratch)), "grpc", grpc_host)
        results: dict[str, list[tuple[float, int]]] = {name: [] for name in cases}
        for run in range(args.runs):  # interleaved, so drift hits every case alike
            for name, (locustfile, protocol, host) in cases.items():
                say(f"run {run + 1}/{args.runs}: {name} user …")
                results[name].append(one_start(locustfile, protocol, host, first))
    rest.shutdown()
    grpc_server.stop(0)
    median = {name: statistics.median(start for start, _ in runs) for name, runs in results.items()}
    for name, runs in results.items():
        peak = max(rss for _, rss in runs) / 2**20
        print(
            f"{name:16} first request after {median[name]:.2f} s (median of {len(runs)}), "
            f"peak RSS {peak:.0f} MiB"
        )
    print(f"P3s = {median['gRPC'] / median['REST']:.2f}  (gRPC start ÷ REST start; goal ≈ 1)")
    if args.old_grpc:
        print(f"old gRPC start ÷ REST start = {median['gRPC, old start'] / median['REST']:.2f}")


if __name__ == "__main__":
    main()
