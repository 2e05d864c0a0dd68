"""S1: serve-local's memory over a minute of mixed good and bad requests from 16 clients (the
real TF runtime, batching on): its RSS once warm (the peak of the first 15 s), at the end and at
its peak, end ÷ warm; and how many requests of each kind were answered as they should be.

Not a test: it prints (tests/test_local_server.py checks the answers over a bounded run).
Usage: python bench/serving_soak.py [--seconds 60] [--clients 16]
"""

from __future__ import annotations

import argparse
import base64
import json
import tempfile
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
from common import PHOTOS, bench_model, say

from tooling.serving.process import batching_config, local_server

MODEL = "image_classifier"
GOOD = {"instances": [{"b64": base64.b64encode(PHOTOS[0]).decode()}]}
BAD = {"instances": [{"b64": base64.b64encode(b"hello, not a photo").decode()}]}
WARM_SECONDS = 15.0


def predict(url: str, body: dict) -> int:
    """POST one predict request; its HTTP status."""
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--clients", type=int, default=16)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as work,
        local_server(bench_model(), Path(work), batching=batching_config()) as server,
    ):
        url = f"{server.rest}/v1/models/{MODEL}:predict"
        process = psutil.Process(server.pid)
        rss: list[tuple[float, int]] = []
        statuses: list[tuple[str, int]] = []
        started = time.monotonic()
        done = threading.Event()

        def client(index: int) -> None:
            turn = index
            while time.monotonic() - started < args.seconds:
                kind, body, expected = ("bad", BAD, 400) if turn % 2 else ("good", GOOD, 200)
                statuses.append((kind, predict(url, body) == expected))
                turn += 1

        def sample_memory() -> None:
            while not done.wait(1.0):
                rss.append((time.monotonic() - started, process.memory_info().rss))

        say(f"{args.clients} clients for {args.seconds:.0f} s …")
        sampler = threading.Thread(target=sample_memory, daemon=True)
        sampler.start()
        with ThreadPoolExecutor(args.clients) as pool:
            list(pool.map(client, range(args.clients)))
        done.set()
        sampler.join()
    mib = 2**20
    warm = max(value for t, value in rss if t <= WARM_SECONDS)
    final, peak = rss[-1][1], max(value for _, value in rss)
    for kind in ("good", "bad"):
        answered = [ok for k, ok in statuses if k == kind]
        print(f"{kind}: {sum(answered)} of {len(answered)} answered as expected")
    print(
        f"RSS warm {warm / mib:.0f} MiB, end {final / mib:.0f} MiB, peak {peak / mib:.0f} MiB; "
        f"S1 = end / warm = {final / warm:.3f}"
    )


if __name__ == "__main__":
    main()
