"""P6: the request signal's target per replica — the concurrency one replica holds at the SLO.

The chart's request-driven mode scales on the mean number of requests inside the servers, read
from TF Serving's own `request_latency_sum` (µs) by Little's law. This runs the real server
(serve-local, the real TF runtime, the chart's default batching off) with N closed-loop clients
for N = 1, 2, 3, …, and prints per N: served req/s, p50/p95 latency, and the concurrency the
server's metrics give (Δ latency_sum / 1e6 / Δt). The target is the concurrency where p95 first
reaches the SLO (interpolated between the two Ns around it), and per core, since a replica's
capacity grows with the cores it gets (the lab's replica: no CPU limit on an e2-standard-4).

All numbers come from this one run on this machine; nothing is compared to stored values.
Usage: python bench/concurrency_at_slo.py [--seconds 20] [--slo-ms 1000] [--max-clients 12]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from common import bench_model, say
from serving_ratio import rest_client


def server_latency_seconds(rest: str) -> float:
    """The server's `request_latency_sum` over every series, in seconds."""
    from tooling.runs.server_metrics import PROMETHEUS_PATH, parse_counters

    with urllib.request.urlopen(f"{rest}/{PROMETHEUS_PATH}", timeout=10) as response:
        _, _, latency_sum_us, _ = parse_counters(response.read().decode())
    return latency_sum_us / 1e6


def closed_loop(rest: str, clients: int, seconds: float) -> tuple[float, float, float, float]:
    """(req/s, p50 s, p95 s, server-side concurrency) with `clients` closed-loop clients."""
    host, port = rest.removeprefix("http://").split(":")
    stop = threading.Event()
    calls: list[list[tuple[float, float]]] = [[] for _ in range(clients)]
    threads = [
        threading.Thread(target=rest_client, args=(host, int(port), stop, calls[i]), daemon=True)
        for i in range(clients)
    ]
    for thread in threads:
        thread.start()
    time.sleep(3)  # warm-up: every client has a request in flight
    busy_before, window_start = server_latency_seconds(rest), time.perf_counter()
    time.sleep(seconds)
    busy_after, window_end = server_latency_seconds(rest), time.perf_counter()
    stop.set()
    for thread in threads:
        thread.join()
    done = sorted(
        end - start for per in calls for start, end in per if window_start <= end <= window_end
    )
    p95 = done[min(len(done) - 1, int(0.95 * len(done)))]
    elapsed = window_end - window_start
    return len(done) / elapsed, statistics.median(done), p95, (busy_after - busy_before) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--slo-ms", type=float, default=1000)
    parser.add_argument("--max-clients", type=int, default=12)
    args = parser.parse_args()

    from tooling.serving.process import local_server

    slo = args.slo_ms / 1000
    cores = len(os.sched_getaffinity(0))
    rows: list[tuple[int, float, float, float, float]] = []
    with tempfile.TemporaryDirectory() as work, local_server(bench_model(), Path(work)) as server:
        for clients in range(1, args.max_clients + 1):
            say(f"{clients} closed-loop clients for {args.seconds:.0f} s …")
            rows.append((clients, *closed_loop(server.rest, clients, args.seconds)))
            if rows[-1][3] >= slo:
                break
    print(f"{'clients':>7} {'req/s':>6} {'p50 ms':>7} {'p95 ms':>7} {'concurrency':>11}")
    for clients, rate, p50, p95, concurrency in rows:
        print(
            f"{clients:>7} {rate:>6.2f} {p50 * 1000:>7.0f} {p95 * 1000:>7.0f} {concurrency:>11.2f}"
        )
    below = [row for row in rows if row[3] < slo]
    above = [row for row in rows if row[3] >= slo]
    if not below or not above:
        print(f"p95 did not cross {args.slo_ms:.0f} ms within 1..{rows[-1][0]} clients")
        return
    (_, _, _, p95_low, c_low), (_, _, _, p95_high, c_high) = below[-1], above[0]
    at_slo = c_low + (c_high - c_low) * (slo - p95_low) / (p95_high - p95_low)
    print(f"concurrency at the {args.slo_ms:.0f} ms p95: {at_slo:.2f} on {cores} cores")
    print(f"per core: {at_slo / cores:.2f}")


if __name__ == "__main__":
    main()
