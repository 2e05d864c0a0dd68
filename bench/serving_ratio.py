"""P1 and P2: the local server against the raw forward pass of the same SavedModel.

P1 = served images/s at saturation (REST, gRPC) ÷ raw forward images/s (batch 8, in-process,
     measured before and after the served runs).
     Goal ≥ 0.90.
P2 = p50 latency with one sequential client ÷ raw batch-1 forward time (median), measured as
     alternating pairs (one raw call, one served request) so both see the same machine state.
     Goal ≤ 1.15.

All numbers come from this one run on this machine; nothing is compared to stored values.
Usage: python bench/serving_ratio.py [--seconds 20] [--clients 16]
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path

from common import PHOTOS, bench_model, say


def load_signature(model: Path) -> object:
    import tensorflow as tf

    return tf.saved_model.load(str(model / "1")).signatures["serving_default"]


def raw_throughput(function: object, seconds: float) -> float:
    """Images/s of the serving_default signature at batch 8, in-process."""
    import tensorflow as tf

    batch = tf.constant([PHOTOS[i % len(PHOTOS)] for i in range(8)])
    function(image_bytes=batch)
    images, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        function(image_bytes=batch)
        images += 8
    return images / (time.perf_counter() - started)


def one_user_pairs(function: object, host: str, port: int, pairs: int) -> tuple[float, float]:
    """(median raw batch-1 seconds, median served one-client seconds), alternating."""
    import tensorflow as tf

    single = tf.constant(PHOTOS[:1])
    body = rest_body(PHOTOS[0])
    connection = http.client.HTTPConnection(host, port, timeout=120)
    raw, served = [], []
    for i in range(pairs + 3):
        started = time.perf_counter()
        function(image_bytes=single)
        raw_time = time.perf_counter() - started
        started = time.perf_counter()
        connection.request(
            "POST",
            "/v1/models/image_classifier:predict",
            body,
            {"Content-Type": "application/json"},
        )
        connection.getresponse().read()
        if i >= 3:
            raw.append(raw_time)
            served.append(time.perf_counter() - started)
    return statistics.median(raw), statistics.median(served)


def rest_body(photo: bytes) -> bytes:
    return json.dumps({"instances": [{"b64": base64.b64encode(photo).decode()}]}).encode()


def rest_client(host: str, port: int, stop: threading.Event, latencies: list[float]) -> None:
    connection = http.client.HTTPConnection(host, port, timeout=120)
    bodies = [rest_body(photo) for photo in PHOTOS]
    i = 0
    while not stop.is_set():
        started = time.perf_counter()
        connection.request(
            "POST",
            "/v1/models/image_classifier:predict",
            bodies[i % len(bodies)],
            {"Content-Type": "application/json"},
        )
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}")
        latencies.append((started, time.perf_counter()))
        i += 1


def grpc_client(target: str, stop: threading.Event, latencies: list[float]) -> None:
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(target))
    requests = []
    for photo in PHOTOS:
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "image_classifier"
        request.inputs["image_bytes"].CopyFrom(tf.make_tensor_proto([photo]))
        requests.append(request)
    i = 0
    while not stop.is_set():
        started = time.perf_counter()
        stub.Predict(requests[i % len(requests)], timeout=120)
        latencies.append((started, time.perf_counter()))
        i += 1


def saturate(client: object, args: tuple, clients: int, seconds: float) -> float:
    """Images/s with `clients` concurrent single-image clients for `seconds`, after warm-up.

    Batched answers arrive in bursts, so the rate is counted between the first and the last
    completion in the window, leaving out the first burst (no quantization to whole batches).
    """
    stop = threading.Event()
    calls: list[list[tuple[float, float]]] = [[] for _ in range(clients)]
    threads = [
        threading.Thread(target=client, args=(*args, stop, calls[i]), daemon=True)
        for i in range(clients)
    ]
    for thread in threads:
        thread.start()
    time.sleep(3)
    window_start = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    ends = sorted(end for per in calls for _, end in per if end >= window_start)
    ends = [end for end in ends if end <= window_start + seconds]
    after_first_burst = [end for end in ends if end > ends[0] + 0.02]
    return len(after_first_burst) / (ends[-1] - ends[0])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--clients", type=int, default=16)
    args = parser.parse_args()

    from tooling.serving.process import batching_config, local_server

    model = bench_model()
    function = load_signature(model)
    say("raw forward pass (in-process) …")
    raw_before = raw_throughput(function, args.seconds / 2)
    with (
        tempfile.TemporaryDirectory() as work,
        local_server(model, Path(work), batching=batching_config(8, 2000, 1)) as server,
    ):
        host, port = server.rest.removeprefix("http://").split(":")
        say(f"REST, {args.clients} clients …")
        rest_ips = saturate(rest_client, (host, int(port)), args.clients, args.seconds)
        say(f"gRPC, {args.clients} clients …")
        grpc_ips = saturate(grpc_client, (server.grpc,), args.clients, args.seconds)
        say("one client, alternating with raw batch-1 calls …")
        raw_b1, p50 = one_user_pairs(function, host, int(port), pairs=20)
    say("raw forward pass again (machine speed drifts; the mean of both is the reference) …")
    raw_ips = (raw_before + raw_throughput(function, args.seconds / 2)) / 2
    print(f"raw forward: {raw_ips:.2f} img/s at batch 8, {raw_b1 * 1000:.0f} ms at batch 1")
    print(
        f"served:      REST {rest_ips:.2f} img/s, gRPC {grpc_ips:.2f} img/s "
        f"({args.clients} clients); one client p50 {p50 * 1000:.0f} ms"
    )
    print(f"P1 REST = {rest_ips / raw_ips:.3f}  (goal >= 0.90)")
    print(f"P1 gRPC = {grpc_ips / raw_ips:.3f}  (goal >= 0.90)")
    print(f"P2      = {p50 / raw_b1:.3f}  (goal <= 1.15)")


if __name__ == "__main__":
    main()
