"""P3: one Locust worker's requests/s on one core against a trivial endpoint ÷ one replica's
images/s. Goal ≥ 20 (one worker can overload twenty replicas, so load generation is never the
bottleneck of a scaling test).

The worker runs the project's locustfile (its REST user, with the lab's request body and the
response check) with no wait time, pinned to core 0; the endpoint is a tiny Go server pinned to
core 1 that answers every request with a valid top-5 prediction. One replica's images/s is the
raw forward throughput of the SavedModel (batch 8) on this machine, measured in the same run.
Usage: python bench/locust_capacity.py [--seconds 20] [--users 40]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from common import CACHE, REPO, bench_model, say
from serving_ratio import load_signature, raw_throughput

from tooling.loadgen import LOCUSTFILE
from tooling.loadgen.run import read_aggregate


def trivial_endpoint() -> Path:
    binary = CACHE / "bench" / "trivial_endpoint"
    binary.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["go", "build", "-o", str(binary), "."], cwd=REPO / "bench" / "trivial_endpoint", check=True
    )
    return binary


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--users", type=int, default=40)
    args = parser.parse_args()

    endpoint = subprocess.Popen(
        ["taskset", "-c", "1", str(trivial_endpoint())], stdout=subprocess.PIPE, text=True
    )
    try:
        address = endpoint.stdout.readline().split()[-1]
        with tempfile.TemporaryDirectory() as report:
            say(f"one Locust worker on core 0, {args.users} users, no wait, → {address} …")
            env = {**os.environ, "WAIT_MIN": "0", "WAIT_MAX": "0"}
            env.pop("LOAD_SHAPE", None)
            subprocess.run(
                [
                    "taskset",
                    "-c",
                    "0",
                    sys.executable,
                    "-m",
                    "locust",
                    "-f",
                    str(LOCUSTFILE),
                    "--headless",
                    f"--users={args.users}",
                    f"--spawn-rate={args.users}",
                    f"--run-time={args.seconds}s",
                    f"--host=http://{address}",
                    f"--csv={report}/p3",
                    "--only-summary",
                    "--loglevel=WARNING",
                ],
                env=env,
                check=True,
                capture_output=True,
            )
            row = read_aggregate(Path(report) / "p3_stats.csv")
    finally:
        endpoint.terminate()
    worker_rps = float(row["Requests/s"])
    failures = int(row["Failure Count"])
    say("one replica's images/s (raw forward, batch 8) …")
    replica_ips = raw_throughput(load_signature(bench_model()), args.seconds / 2)
    print(
        f"one Locust worker: {worker_rps:.0f} req/s ({failures} failures); "
        f"one replica: {replica_ips:.2f} img/s"
    )
    print(f"P3 = {worker_rps / replica_ips:.1f}  (goal >= 20)")


if __name__ == "__main__":
    main()
