"""A simulated pod's CPU use, as kwok serves it to metrics-server (the annotation both the
load model and the replica fleet write)."""

from __future__ import annotations

from kubernetes import client

USAGE_CPU_ANNOTATION = "kwok.x-k8s.io/usage-cpu"


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
