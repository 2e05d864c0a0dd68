"""A simulated pod's CPU use, as kwok serves it to metrics-server (the annotation both the
load model and the replica fleet write)."""

from __future__ import annotations

from kubernetes import client

from tooling.quantities import millicores

USAGE_CPU_ANNOTATION = "kwok.x-k8s.io/usage-cpu"
# The least a live pod uses. kwok adds up a pod's CPU counter only when it is scraped, from the
# annotation at that moment; a pod at 0 at every scrape keeps a counter of 0, which
# metrics-server drops as an incomplete metric, and the HPA counts a pod without metrics at
# 100 % of its request on a scale-down (seen: an idle replica without metrics held the HPA at
# 2 replicas, tests/test_faults.py). A real container's counter is never 0: its start used CPU.
IDLE_CORES = 0.001


def usage_cpu(cores: float) -> str:
    """The annotation's value for `cores` in use: millicores, at least IDLE_CORES."""
    return millicores(max(cores, IDLE_CORES))


def write_usage_cpu(core: client.CoreV1Api, namespace: str, pod: str, value: str) -> None:
    """Sets the pod's CPU use as kwok serves it (an ApiException if the pod is gone). The
    patched pod sent back is not read: no model objects built, its bytes dropped and the
    connection returned to the pool (hundreds of pods are written every few seconds)."""
    reply = core.patch_namespaced_pod(
        pod,
        namespace,
        {"metadata": {"annotations": {USAGE_CPU_ANNOTATION: value}}},
        _preload_content=False,
    )
    reply.drain_conn()
    reply.release_conn()
