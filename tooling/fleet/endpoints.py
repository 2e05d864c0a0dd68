"""Which simulated replicas take requests: the model Service's EndpointSlices, watched on the
real API server, as kube-proxy watches them. A pod whose endpoint turns ready gets a replica;
one whose endpoint stops being ready gets no new request at once, and if its pod was deleted
it dies at the end of its grace period (tooling.fleet.replicas)."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from kubernetes import client, watch

from tooling.fleet.replicas import (
    ModelCost,
    SimulatedReplica,
    pod_cores,
    pod_grace_seconds,
    pod_metrics_path,
    pod_stop_seconds,
)
from tooling.runs.transient import TRANSIENT_ERRORS

SERVICE_LABEL = "kubernetes.io/service-name"
WATCH_SECONDS = 30  # each watch is renewed after this (and after any error)


def ready_pods(slices: list[client.V1EndpointSlice]) -> set[str]:
    """Pods behind ready endpoints (what kube-proxy sends traffic to)."""
    ready = set()
    for endpoint_slice in slices:
        for endpoint in endpoint_slice.endpoints or []:
            conditions = endpoint.conditions
            if conditions and conditions.ready and endpoint.target_ref:
                ready.add(endpoint.target_ref.name)
    return ready


@dataclass
class Fleet:
    """The replicas and the routing table, kept in step with the Service's endpoints."""

    core: client.CoreV1Api
    discovery: client.DiscoveryV1Api
    namespace: str
    service: str
    cost: ModelCost
    node_cpu: float  # a node's allocatable CPU: a replica's cores when its pod has no limit
    loop: asyncio.AbstractEventLoop | None = None  # where the replicas run (set by the server)
    replicas: dict[str, SimulatedReplica] = field(default_factory=dict)
    ready: tuple[str, ...] = ()
    killed_requests: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def pick(self) -> SimulatedReplica | None:
        """A ready replica for the next request, at random as kube-proxy picks; None if none."""
        with self.lock:
            return self.replicas[random.choice(self.ready)] if self.ready else None

    def apply(self, slices: list[client.V1EndpointSlice]) -> None:
        """Brings the routing table and the replicas in line with the endpoints."""
        ready = ready_pods(slices)
        for pod_name in ready - set(self.replicas):
            self.add(pod_name)
        with self.lock:
            leaving = [name for name in self.ready if name not in ready]
            self.ready = tuple(sorted(name for name in ready if name in self.replicas))
        for pod_name in leaving:
            self.retire(pod_name)

    def add(self, pod_name: str) -> None:
        pod = self.core.read_namespaced_pod(pod_name, self.namespace)
        replica = SimulatedReplica(
            pod_name,
            pod_cores(pod, self.node_cpu),
            self.cost,
            pod_grace_seconds(pod),
            pod_stop_seconds(pod),
            metrics_path=pod_metrics_path(pod),
        )
        with self.lock:
            self.replicas[pod_name] = replica

    def retire(self, pod_name: str) -> None:
        """The endpoint is gone: if the pod is being deleted, its replica dies at the end of
        the deletion's grace period (a pod merely not ready just gets no new requests)."""
        replica = self.replicas[pod_name]
        try:
            pod = self.core.read_namespaced_pod(pod_name, self.namespace)
        except client.ApiException as error:
            if error.status != 404:
                raise
            pod = None  # already removed: deleted just now, with the grace read at its start
        if pod is not None and pod.metadata.deletion_timestamp is None:
            return
        # Kubernetes sets a graceful deletion's deletionTimestamp to its deadline (deletion +
        # grace); kwok then finishes the pod at once (grace 0), which no TF Serving process
        # does: then the grace read from the pod's spec at its start holds. A replica that
        # SIGTERM stops dies when its preStop sleep ends (tooling.fleet.replicas).
        remaining = replica.grace_seconds
        if pod is not None and pod.metadata.deletion_grace_period_seconds:
            deadline = pod.metadata.deletion_timestamp
            remaining = max(0.0, (deadline - datetime.now(UTC)).total_seconds())
        remaining = replica.seconds_left(remaining)
        replica.dies_at = time.monotonic() + remaining
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self.schedule_kill, pod_name, remaining)

    def schedule_kill(self, pod_name: str, delay: float) -> None:
        asyncio.get_running_loop().call_later(delay, self.kill, pod_name)

    def kill(self, pod_name: str) -> None:
        with self.lock:
            replica = self.replicas.pop(pod_name, None)
        if replica is not None:
            self.killed_requests += replica.cpu.kill()

    def list_slices(self) -> tuple[list[client.V1EndpointSlice], str]:
        listed = self.discovery.list_namespaced_endpoint_slice(
            self.namespace, label_selector=f"{SERVICE_LABEL}={self.service}"
        )
        return listed.items, listed.metadata.resource_version

    def run(self, stop: threading.Event) -> None:
        """Lists the Service's EndpointSlices, then watches them; after any error, again."""
        while not stop.is_set():
            try:
                slices, version = self.list_slices()
                self.apply(slices)
                known = {s.metadata.name: s for s in slices}
                stream = watch.Watch().stream(
                    self.discovery.list_namespaced_endpoint_slice,
                    self.namespace,
                    label_selector=f"{SERVICE_LABEL}={self.service}",
                    resource_version=version,
                    timeout_seconds=WATCH_SECONDS,
                    _request_timeout=(5, WATCH_SECONDS + 10),
                )
                for event in stream:
                    if stop.is_set():
                        break
                    endpoint_slice = event["object"]
                    if event["type"] == "DELETED":
                        known.pop(endpoint_slice.metadata.name, None)
                    else:
                        known[endpoint_slice.metadata.name] = endpoint_slice
                    self.apply(list(known.values()))
            except TRANSIENT_ERRORS:
                stop.wait(1.0)  # the API server is away: keep routing as last seen
