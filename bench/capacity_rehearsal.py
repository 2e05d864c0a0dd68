"""Capacity planning at scale: one `rehearse --load model` run on a large node pool, with what
each control-plane process cost this machine while it ran.

The rehearsal's real control plane (etcd, kube-apiserver, controller-manager with the HPA,
scheduler, metrics-server, the Cluster Autoscaler, kwok) runs the pool and the replicas; the
load is the analytical load model, so the users cost nothing here and only nodes and pods do.
Prints the run's row for the README's capacity table (nodes, replicas, users, time to serve
the peak, node-minutes), the wall time, and each process's mean and peak CPU (cores).

Usage: python bench/capacity_rehearsal.py [--max-nodes 100] [--users 20000] [--wait 20]
       [--values charts/resnet-serving/ci/capacity-values.yaml] [--report runs/capacity]
"""

from __future__ import annotations

import argparse
import itertools
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
from common import REPO, say

from tooling.rehearsal import components
from tooling.report.run_report import read_run, run_summary

PROCESSES = (
    "kube-apiserver",
    "etcd",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok-controller",
    "metrics-server",
    "cluster-autoscaler",
)


def sample_cpu(
    cluster: str, driver: int, stop: threading.Event, samples: dict[str, list[float]]
) -> None:
    """Each process's CPU (cores) every 5 s while the run lasts; `driver` is the rehearsal's
    own process (story, recorder, load model)."""
    handles: dict[str, psutil.Process] = {}
    while not stop.wait(5):
        for name in (*PROCESSES, "rehearse (Python)"):
            pid = driver if name.startswith("rehearse") else components.running_pid(cluster, name)
            if pid is None:
                continue
            try:
                if name not in handles or handles[name].pid != pid:
                    handles[name] = psutil.Process(pid)
                    handles[name].cpu_percent()  # the first call starts its clock
                    continue
                samples.setdefault(name, []).append(handles[name].cpu_percent() / 100)
            except psutil.Error:
                handles.pop(name, None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-nodes", type=int, default=100)
    parser.add_argument("--users", type=int, default=20000, help="the step shape's peak")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--step-seconds", type=float, default=30)
    parser.add_argument("--wait", type=float, default=20, help="each user's mean wait (s)")
    parser.add_argument(
        "--values", type=Path, default=REPO / "charts/resnet-serving/ci/capacity-values.yaml"
    )
    parser.add_argument("--report", type=Path, default=REPO / "runs/capacity")
    args = parser.parse_args()
    cluster = f"capacity-{os.getpid()}"
    run_dir = args.report / f"{args.max_nodes}-nodes-{args.users}-users"
    environment = {
        **os.environ,
        "STEP_USERS": str(args.users // args.steps),
        "STEP_SECONDS": f"{args.step_seconds:g}",
        "STEPS": str(args.steps),
        "WAIT_MIN": f"{args.wait * 0.9:g}",
        "WAIT_MAX": f"{args.wait * 1.1:g}",
    }
    command = [
        sys.executable, "-m", "tooling.cli", "rehearse", "--load", "model",
        "--values", str(args.values), "--max-nodes", str(args.max_nodes),
        "--name", cluster, "--report", str(run_dir),
    ]  # fmt: skip
    say(f"capacity: {' '.join(command[3:])} (users {args.users}, wait {args.wait:g} s) …")
    samples: dict[str, list[float]] = {}
    stop = threading.Event()
    started = time.monotonic()
    process = subprocess.Popen(command, env=environment, cwd=REPO)
    sampler = threading.Thread(target=sample_cpu, args=(cluster, process.pid, stop, samples))
    sampler.start()
    code = process.wait()
    wall = time.monotonic() - started
    stop.set()
    sampler.join()
    summary = run_summary(run_dir)
    peak = (
        "never" if summary.time_to_serve_peak_s is None else f"{summary.time_to_serve_peak_s:.0f} s"
    )
    print("| nodes (max) | replicas (max) | users | time to serve the peak | node-minutes | wall |")
    print("| --- | --- | --- | --- | --- | --- |")
    print(
        f"| {summary.max_nodes} ({args.max_nodes}) | {summary.max_replicas} | {summary.peak_users} "
        f"| {peak} | {summary.node_minutes:.0f} | {wall / 60:.1f} min (exit {code}) |"
    )
    gaps = [b - a for a, b in itertools.pairwise(row["t_seconds"] for row in read_run(run_dir))]
    print(
        f"\ntimeline samples: every {sum(gaps) / len(gaps):.1f} s on average, "
        f"{max(gaps):.1f} s at most (the profile asks 2 s)"
    )
    print("\n| process | mean CPU (cores) | peak CPU (cores) |\n| --- | --- | --- |")
    for name in (*PROCESSES, "rehearse (Python)"):
        if samples.get(name):
            values = samples[name]
            print(f"| {name} | {sum(values) / len(values):.2f} | {max(values):.2f} |")


if __name__ == "__main__":
    main()
