"""P4: the rehearsal's replica fleet against the real thing and against the load model, measured
in one run (not a test: it prints).

1. One simulated replica (this machine's cores, the model's cost measured now) and one real
   `serve-local` of the exported model, the project's Locust REST user at 1, 4 and 8 users:
   req/s and p50 of each, and simulated ÷ real (goal: within 0.8-1.2).
2. Two simulated replicas (2 cores each) under 8 users in steady state beside the analytical
   load model: offered req/s and CPU per pod (goal: within 0.9-1.1).
Usage: python bench/fleet_fidelity.py [--seconds 20]
"""

from __future__ import annotations

import argparse

from common import bench_model, say

from tooling.fleet.fidelity import compare_with_load_model, compare_with_serve_local


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=20, help="Locust run per user count")
    args = parser.parse_args()
    sides = compare_with_serve_local(bench_model(), seconds=args.seconds, say=say)
    print("| users | real req/s | simulated req/s | ratio | real p50 | simulated p50 | ratio |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for side in sides:
        print(
            f"| {side.users} | {side.real.rps:.2f} | {side.simulated.rps:.2f} | "
            f"{side.rps_ratio:.2f} | {side.real.p50_ms:.0f} ms | {side.simulated.p50_ms:.0f} ms | "
            f"{side.p50_ratio:.2f} |"
        )
    say("fleet against the load model: 2 replicas, 8 users, 40 s …")
    steady = compare_with_load_model(users=8, replicas=2, cores=2.0, seconds=40)
    print()
    print("| 8 users, 2 replicas | fleet | load model | ratio |")
    print("| --- | --- | --- | --- |")
    print(
        f"| offered req/s | {steady.fleet_rps:.2f} | {steady.model_rps:.2f} | "
        f"{steady.fleet_rps / steady.model_rps:.2f} |"
    )
    cpu_ratio = steady.fleet_cpu_per_pod / steady.model_cpu_per_pod
    print(
        f"| CPU per pod (cores) | {steady.fleet_cpu_per_pod:.3f} | "
        f"{steady.model_cpu_per_pod:.3f} | {cpu_ratio:.2f} |"
    )


if __name__ == "__main__":
    main()
