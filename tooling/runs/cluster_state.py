"""What the cluster showed when a run failed: its nodes, the app namespace's pods with their
conditions, and the recent events, written beside the run's other records so a failed wait
can be read afterwards (`kubectl get`/`describe` are gone with a deleted cluster)."""

from __future__ import annotations

from pathlib import Path

from kubernetes import client

from tooling.kube import node_condition_ready

FILE = "cluster-state.txt"
EVENTS_KEPT = 60


def describe_cluster(api: client.ApiClient, namespace: str) -> list[str]:
    """Lines: each node (Ready, unschedulable, taints, allocatable), each pod of `namespace`
    (phase, node, priority, requests, conditions that are not True) and the last events."""
    core = client.CoreV1Api(api)
    lines = ["# nodes"]
    for node in core.list_node().items:
        taints = [f"{t.key}:{t.effect}" for t in node.spec.taints or []]
        allocatable = node.status.allocatable or {}
        lines.append(
            f"{node.metadata.name}: ready {node_condition_ready(node)}, "
            f"unschedulable {bool(node.spec.unschedulable)}, taints {taints}, "
            f"allocatable cpu {allocatable.get('cpu')} memory {allocatable.get('memory')}"
        )
    lines.append(f"# pods in {namespace}")
    for pod in core.list_namespaced_pod(namespace).items:
        requests = [
            (c.resources.requests or {}) if c.resources else {} for c in pod.spec.containers
        ]
        lines.append(
            f"{pod.metadata.name}: {pod.status.phase}, node {pod.spec.node_name}, "
            f"priority {pod.spec.priority}, requests {requests}"
        )
        for condition in pod.status.conditions or []:
            if condition.status != "True":
                lines.append(f"  {condition.type} {condition.reason}: {condition.message}")
    lines.append(f"# the last {EVENTS_KEPT} events")
    events = core.list_event_for_all_namespaces().items
    events.sort(
        key=lambda e: str(e.last_timestamp or e.event_time or e.metadata.creation_timestamp)
    )
    for event in events[-EVENTS_KEPT:]:
        what = f"{event.involved_object.kind}/{event.involved_object.name}"
        lines.append(f"{event.metadata.namespace} {what} {event.reason}: {event.message}")
    return lines


def keep_cluster_state(api: client.ApiClient, namespace: str, run_dir: Path) -> Path:
    """Writes describe_cluster's lines to RUN_DIR/cluster-state.txt."""
    path = run_dir / FILE
    path.write_text("\n".join(describe_cluster(api, namespace)) + "\n")
    return path
