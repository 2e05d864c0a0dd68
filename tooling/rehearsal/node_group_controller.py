"""RehearsalNodeGroupController: adds and removes kwok Nodes by the Cluster Autoscaler's rules.

It stands in for the real cluster-autoscaler, which could not be built here (see
node_group_rules). It talks to the real apiserver only: Unschedulable pods and node
utilization in, Nodes created (after a provisioning delay) and drained by eviction (so
PodDisruptionBudgets hold) out, with the cluster-autoscaler's event reasons
(TriggeredScaleUp, ScaleDown) so the timeline reads the same.
"""

from __future__ import annotations

import itertools
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from kubernetes import client
from kubernetes.client.rest import ApiException

from tooling.kube import node_condition_ready
from tooling.quantities import cpu_cores, memory_bytes
from tooling.rehearsal.cluster import NODE_GROUP_LABEL, node_manifest
from tooling.rehearsal.node_group_rules import (
    GroupRules,
    NodeView,
    PodView,
    Resources,
    ScaleDownTracker,
    nodes_to_add,
)
from tooling.runs.transient import TRANSIENT_ERRORS

SOURCE = "rehearsal-node-group-controller"


def pod_requests(pod: client.V1Pod) -> Resources:
    total = Resources(0.0, 0.0)
    for container in pod.spec.containers or []:
        requests = (container.resources and container.resources.requests) or {}
        total = total + Resources(
            cpu_cores(requests.get("cpu", "0")), memory_bytes(requests.get("memory", "0"))
        )
    return total


def is_unschedulable(pod: client.V1Pod) -> bool:
    return any(
        c.type == "PodScheduled" and c.status == "False" and c.reason == "Unschedulable"
        for c in (pod.status.conditions or [])
    )


@dataclass
class RehearsalNodeGroupController:
    core: client.CoreV1Api
    group: str
    rules: GroupRules
    scan_seconds: float
    provisioning_seconds: float
    tracker: ScaleDownTracker = field(default_factory=ScaleDownTracker)
    last_scale_up: float | None = None
    provisioning: list[float] = field(default_factory=list)  # when each new node is ready
    # Nodes just created: the scheduler has not placed the pending pods on them yet, so they
    # still count as upcoming for a few scans (no second node for the same pod).
    created: list[float] = field(default_factory=list)
    serial: itertools.count = field(default_factory=lambda: itertools.count(1))

    def group_nodes(self) -> list[client.V1Node]:
        selector = f"{NODE_GROUP_LABEL}={self.group}"
        return self.core.list_node(label_selector=selector).items

    def create_node(self) -> str:
        name = f"{self.group}-{next(self.serial)}"
        self.core.create_node(node_manifest(name, self.group))
        return name

    def ensure_min_size(self) -> None:
        """Creates the group's first nodes at once (a new cluster starts at min size); on a
        reused cluster, new node names continue after the existing ones."""
        existing = self.group_nodes()
        suffixes = [
            int(n.metadata.name.rsplit("-", 1)[-1])
            for n in existing
            if n.metadata.name.rsplit("-", 1)[-1].isdigit()
        ]
        self.serial = itertools.count(max(suffixes, default=0) + 1)
        for _ in range(len(existing), self.rules.min_size):
            self.create_node()

    def event(self, kind: str, name: str, namespace: str, reason: str, message: str) -> None:
        now = datetime.now(UTC)
        self.core.create_namespaced_event(
            namespace,
            client.CoreV1Event(
                metadata=client.V1ObjectMeta(generate_name=f"{name}."),
                involved_object=client.V1ObjectReference(
                    kind=kind, name=name, namespace=namespace or None
                ),
                reason=reason,
                message=message,
                type="Normal",
                source=client.V1EventSource(component=SOURCE),
                reporting_component=SOURCE,
                reporting_instance=SOURCE,
                action=reason,
                event_time=now,
            ),
        )

    def step(self, now: float) -> None:
        """One scan: provision due nodes, scale up for Unschedulable pods, or scale down."""
        due = [ready_at for ready_at in self.provisioning if ready_at <= now]
        for _ in due:
            self.create_node()
            self.created.append(now)
        settle = max(10.0, 3 * self.scan_seconds)
        self.created = [at for at in self.created if now - at < settle]
        self.provisioning = [ready_at for ready_at in self.provisioning if ready_at > now]

        nodes = self.group_nodes()
        pods = self.core.list_pod_for_all_namespaces().items
        pending = [p for p in pods if p.status.phase == "Pending" and is_unschedulable(p)]
        size = len(nodes) + len(self.provisioning)
        add = (
            nodes_to_add(
                [PodView(p.metadata.name, pod_requests(p)) for p in pending],
                size,
                self.rules,
                upcoming=len(self.provisioning) + len(self.created),
            )
            if pending
            else 0
        )
        if add:
            self.last_scale_up = now
            for _ in range(add):
                self.provisioning.append(now + self.provisioning_seconds)
            for pod in pending:
                self.event(
                    "Pod",
                    pod.metadata.name,
                    pod.metadata.namespace,
                    "TriggeredScaleUp",
                    f"pod triggered scale-up: [{{{self.group} {size}->{size + add} (max: "
                    f"{self.rules.max_size})}}]",
                )
            return
        if pending or self.provisioning or self.created:
            return
        by_node: dict[str, list[client.V1Pod]] = {}
        for pod in pods:
            if pod.spec.node_name and pod.status.phase in ("Pending", "Running"):
                by_node.setdefault(pod.spec.node_name, []).append(pod)
        views = [self._view(node, by_node.get(node.metadata.name, [])) for node in nodes]
        victim = self.tracker.node_to_remove(views, now, self.last_scale_up, self.rules)
        if victim:
            self._drain_and_delete(victim, by_node.get(victim, []))

    def _view(self, node: client.V1Node, pods: list[client.V1Pod]) -> NodeView:
        allocatable = node.status.allocatable or {}
        return NodeView(
            node.metadata.name,
            Resources(
                cpu_cores(allocatable.get("cpu", "0")), memory_bytes(allocatable.get("memory", "0"))
            ),
            node_condition_ready(node),
            tuple(
                PodView(p.metadata.name, pod_requests(p), movable=bool(p.metadata.owner_references))
                for p in pods
            ),
        )

    def _drain_and_delete(self, node_name: str, pods: list[client.V1Pod]) -> None:
        self.core.patch_node(node_name, {"spec": {"unschedulable": True}})
        for pod in pods:
            eviction = client.V1Eviction(
                metadata=client.V1ObjectMeta(
                    name=pod.metadata.name, namespace=pod.metadata.namespace
                )
            )
            try:
                self.core.create_namespaced_pod_eviction(
                    pod.metadata.name, pod.metadata.namespace, eviction
                )
            except ApiException as error:
                if error.status == 429:  # a PodDisruptionBudget says not now; try next scan
                    self.core.patch_node(node_name, {"spec": {"unschedulable": False}})
                    return
                if error.status != 404:
                    raise
        self.event(
            "Node",
            node_name,
            "default",
            "ScaleDown",
            f"node removed by scale down: {node_name} (requests under "
            f"{self.rules.utilization_threshold:.0%} for {self.rules.unneeded_seconds:.0f} s)",
        )
        self.core.delete_node(node_name)

    def scan_until(self, stop: threading.Event) -> None:
        """A scan every `scan_seconds` until `stop` (the caller runs `ensure_min_size` first)."""
        while not stop.wait(self.scan_seconds):
            try:
                self.step(time.monotonic())
            except TRANSIENT_ERRORS as error:  # the next scan retries
                reason = getattr(error, "reason", None) or type(error).__name__
                print(f"node-group controller: {reason}; retrying", file=sys.stderr)
