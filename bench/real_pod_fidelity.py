"""P4 on a real pod: one real model-server pod on the node cluster (the TF
Serving stand-in, CPU limit L) against one simulated replica of the rehearsal's fleet
(tooling/fleet/, the model's cost from the calibration, k = L cores), the project's Locust
REST user at 1 and 4 users from this machine (it reaches the pod's IP directly): req/s and p50
of each, simulated ÷ real (goal: within 0.8-1.2), and the pod's CPU-seconds per request (from
the kubelet's stats) beside the calibration's. Writes the table to runs/real-pod-fidelity.md.

Not a test: it prints. Needs root and the node's parts (`make setup-node`); run it under
`flock /tmp/heavy.lock` (one node cluster at a time).
Usage: python bench/real_pod_fidelity.py [--cpu 1000m] [--seconds 30] [--users 1 4]
       [--kubeconfig F]
  (--kubeconfig: a running node cluster; else one is created and deleted)
"""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from common import REPO, say
from kubernetes import client

from tooling import calibration, releases
from tooling.fleet.fidelity import Measured, fixed_users_run, locust_at, simulated_fleet
from tooling.fleet.replicas import ModelCost
from tooling.kube import api_client
from tooling.loadgen.run import run_load
from tooling.names import RELEASE, SELECTOR
from tooling.providers.node import NODE_VALUES
from tooling.quantities import cpu_cores
from tooling.runs.app_namespace import ensure_app_namespace
from tooling.waiting import wait_for

USERS = (1, 4)
NAMESPACE = "real-pod-fidelity"
REPORT = REPO / "runs" / "real-pod-fidelity.md"


@dataclass(frozen=True)
class Row:
    users: int
    real: Measured
    simulated: Measured
    real_cpu_seconds: float  # the pod's CPU-seconds per request in its run


@contextlib.contextmanager
def node_cluster(kubeconfig: str | None) -> Iterator[Path]:
    """The running cluster the kubeconfig names, else a new node cluster deleted afterwards."""
    if kubeconfig:
        yield Path(kubeconfig)
        return
    from tooling.node.node_cluster import NodeClusterSpec
    from tooling.providers.node import NodeProvider

    with tempfile.TemporaryDirectory() as folder:
        spec = NodeClusterSpec(Path(folder) / "kubeconfig", f"fidelity-{os.getpid()}")
        provider = NodeProvider()
        try:
            provider.create(spec, say)
            yield spec.kubeconfig
        finally:
            provider.delete(spec, say)


@contextlib.contextmanager
def real_pod(kubeconfig: Path, cpu_limit: str) -> Iterator[client.V1Pod]:
    """One model-server replica (node values, no HPA) with the CPU limit, Ready; removed after."""
    api = api_client(kubeconfig)
    core = client.CoreV1Api(api)
    ensure_app_namespace(core, NAMESPACE)
    wait_for(lambda: bool(core.list_namespaced_service_account(NAMESPACE).items), 60, "the SA")
    request = f"{min(500, int(cpu_cores(cpu_limit) * 1000))}m"
    values = {
        "autoscaling": {"enabled": False},
        "replicaCount": 1,
        "resources": {"requests": {"cpu": request}, "limits": {"cpu": cpu_limit}},
    }
    node_values = releases.values_from_files(NODE_VALUES["resnet-serving"])
    started = time.monotonic()
    try:
        releases.install(
            kubeconfig, RELEASE, "resnet-serving", NAMESPACE, *node_values, values, wait=True
        )
        (pod,) = core.list_namespaced_pod(NAMESPACE, label_selector=SELECTOR).items
        say(
            f"real pod {pod.metadata.name} Ready in {time.monotonic() - started:.0f} s "
            f"at {pod.status.pod_ip} (limit {cpu_limit})"
        )
        yield pod
    finally:
        releases.uninstall(kubeconfig, RELEASE, NAMESPACE, wait=True)
        core.delete_namespace(NAMESPACE)
        wait_for(
            lambda: NAMESPACE not in {n.metadata.name for n in core.list_namespace().items},
            120,
            f"the namespace {NAMESPACE} to be deleted",
        )


def pod_cpu_seconds(core: client.CoreV1Api, pod: client.V1Pod) -> float:
    """The server container's CPU-seconds so far, from the kubelet's summary stats."""
    import json

    reply = core.connect_get_node_proxy_with_path(
        pod.spec.node_name, "stats/summary", _preload_content=False
    )
    for entry in json.loads(reply.data)["pods"]:
        if entry["podRef"]["name"] == pod.metadata.name:
            for container in entry.get("containers", []):
                if container["name"] == "tensorflow-serving":
                    return container["cpu"]["usageCoreNanoSeconds"] / 1e9
    raise RuntimeError(f"no CPU figures for {pod.metadata.name} in the kubelet's summary")


def measure_real(
    kubeconfig: Path, pod: client.V1Pod, seconds: int, work: Path, users_counts: list[int]
) -> dict:
    core = client.CoreV1Api(api_client(kubeconfig))
    host = f"http://{pod.status.pod_ip}:8501"
    measured = {}
    for users in users_counts:
        say(f"real pod, {users} users, {seconds} s …")
        cpu_before = pod_cpu_seconds(core, pod)
        spec = fixed_users_run(host, users, seconds, work / f"real-{users}")
        result = run_load(spec, say=lambda line: None)  # locust_at's, with the request count
        if result.failures:
            raise RuntimeError(f"{result.failures} failed requests: see {spec.report_dir}")
        time.sleep(12)  # the kubelet's summary is refreshed every ~10 s
        cpu = pod_cpu_seconds(core, pod) - cpu_before
        say(
            f"  {result.requests} requests, {result.requests_per_second:.2f} req/s, "
            f"p50 {result.median_ms:.0f} ms, pod CPU {cpu:.1f} s"
        )
        real = Measured(users, result.requests_per_second, result.median_ms)
        measured[users] = (real, cpu / result.requests if result.requests else float("nan"))
    return measured


def table(rows: list[Row], cost: ModelCost, cpu_limit: str, seconds: int) -> str:
    lines = [
        f"# One real pod against one simulated replica (CPU limit {cpu_limit}, {seconds} s runs)",
        "",
        f"Simulated replica: k = {cpu_cores(cpu_limit):g} cores, {cost.cpu_seconds:.4f} CPU-s "
        f"per request on up to {cost.per_request_cores:.2f} cores (tooling/data/calibration.json)."
        " Real pod: the TF Serving stand-in (serve-local) on the node cluster, Locust on the host.",
        "",
        "| users | real req/s | simulated req/s | ratio | real p50 | simulated p50 | ratio "
        "| real CPU-s/request |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        lines.append(
            f"| {row.users} | {row.real.rps:.2f} | {row.simulated.rps:.2f} | "
            f"{row.simulated.rps / row.real.rps:.2f} | {row.real.p50_ms:.0f} ms | "
            f"{row.simulated.p50_ms:.0f} ms | {row.simulated.p50_ms / row.real.p50_ms:.2f} | "
            f"{row.real_cpu_seconds:.3f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cpu", default="1000m", help="the real pod's CPU limit, L")
    parser.add_argument("--seconds", type=int, default=30, help="Locust run per user count")
    parser.add_argument("--kubeconfig", help="a running node cluster (else one is created)")
    parser.add_argument(
        "--users", type=int, nargs="+", default=list(USERS), help="Locust user counts"
    )
    args = parser.parse_args()
    cost = ModelCost.measured(calibration.load())
    cores = cpu_cores(args.cpu)
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        with node_cluster(args.kubeconfig) as kubeconfig, real_pod(kubeconfig, args.cpu) as pod:
            real = measure_real(kubeconfig, pod, args.seconds, work, args.users)
        simulated = {}
        with simulated_fleet(cost, 1, cores) as (url, _):
            for users in args.users:
                say(f"simulated replica, {users} users, {args.seconds} s …")
                simulated[users] = locust_at(url, users, args.seconds, work / f"sim-{users}")
    rows = [Row(u, real[u][0], simulated[u], real[u][1]) for u in args.users]
    text = table(rows, cost, args.cpu, args.seconds)
    print(text)
    REPORT.parent.mkdir(exist_ok=True)
    REPORT.write_text(text)
    say(f"wrote {REPORT} ({time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
