"""The rehearsal's load source: simulated pods' CPU from the load model.

Every few seconds: users from the load shape → the load model → CPU of each ready replica,
written to the pod annotation kwok reads (`kwok.x-k8s.io/usage-cpu`); kwok serves it as
kubelet resource metrics, metrics-server scrapes them, the real HPA controller acts on them.
"""

from __future__ import annotations

import contextlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from kubernetes import client
from kubernetes.client.rest import ApiException

from tooling.analytic_load import THINK_SECONDS, LoadPoint, load_point
from tooling.kube import list_items, pod_ready
from tooling.loadgen.load_shapes import Shape, shape_seconds
from tooling.pod_usage import USAGE_CPU_ANNOTATION, usage_cpu, write_usage_cpu
from tooling.quantities import cpu_cores
from tooling.runs.timeline import LoadSample
from tooling.runs.transient import TRANSIENT_ERRORS

PATCH_THREADS = 8


@dataclass
class LoadDriver:
    core: client.CoreV1Api
    namespace: str
    selector: str  # label selector of the model server's pods
    shape: Shape
    cpu_seconds_per_request: float
    cores_per_pod: float
    period: float
    think_seconds: float = THINK_SECONDS  # each user's mean wait between requests
    started: float = field(default_factory=time.monotonic)
    current: tuple[int, LoadPoint] = (0, LoadPoint(0, 0, 0, 0, False))
    finished: threading.Event = field(default_factory=threading.Event)
    patches: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(PATCH_THREADS))

    def step(self) -> None:
        users = self.shape.users_at(time.monotonic() - self.started)
        if users is None:
            users = 0
            self.finished.set()
        pods = list_items(
            self.core.list_namespaced_pod, self.namespace, label_selector=self.selector
        )
        ready = {pod["metadata"]["name"] for pod in pods if pod_ready(pod)}
        point = load_point(
            users, len(ready), self.cpu_seconds_per_request, self.cores_per_pod, self.think_seconds
        )
        self.current = (users, point)
        changed = []
        for pod in pods:
            name = pod["metadata"]["name"]
            value = usage_cpu(point.cpu_cores_per_pod if name in ready else 0.0)
            if (pod["metadata"].get("annotations") or {}).get(USAGE_CPU_ANNOTATION) != value:
                changed.append((name, value))
        # hundreds of replicas change together: their patches go out side by side, or one
        # period's writes would outlast the period
        list(self.patches.map(lambda named: self.write_usage(*named), changed))

    def write_usage(self, pod: str, value: str) -> None:
        try:
            write_usage_cpu(self.core, self.namespace, pod, value)
        except ApiException as error:
            if error.status != 404:  # a pod that just went away needs no usage
                raise

    def latest(self) -> LoadSample:
        users, point = self.current
        return LoadSample(
            users=users,
            offered_rps=point.offered_rps,
            response_ms=None
            if point.response_seconds == float("inf")
            else point.response_seconds * 1000,
        )

    @property
    def max_seconds(self) -> float:
        return shape_seconds(self.shape)

    def run(self, stop: threading.Event) -> None:
        try:
            while not stop.is_set():
                with contextlib.suppress(*TRANSIENT_ERRORS):  # the next period retries
                    self.step()
                stop.wait(self.period)
        finally:
            self.patches.shutdown(wait=False)


def cores_per_pod(container_resources: dict, node_allocatable_cpu: str) -> float:
    """CPU one replica may use: its limit, else the node's allocatable CPU."""
    limits = (container_resources or {}).get("limits") or {}
    if limits.get("cpu"):
        return cpu_cores(limits["cpu"])
    return cpu_cores(node_allocatable_cpu)
