"""Drives simulated pods' CPU from the load model, and records what happened in timeline.csv.

LoadDriver: every few seconds, users from the load shape → the load model → CPU of each ready
replica, written to the pod annotation kwok reads (`kwok.x-k8s.io/usage-cpu`); kwok serves it
as kubelet resource metrics, metrics-server scrapes them, the real HPA controller acts on them.

TimelineRecorder: samples the API (HPA status, Deployment, Pods, Nodes) and the events seen,
into timeline.csv (the columns below are a contract other commands read) and events.csv.
"""

from __future__ import annotations

import contextlib
import csv
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from kubernetes import client
from kubernetes.client.rest import ApiException

from tooling.loadgen.load_shapes import Shape
from tooling.rehearsal.load_model import LoadPoint, load_point
from tooling.rehearsal.quantities import cpu_cores, millicores

USAGE_CPU_ANNOTATION = "kwok.x-k8s.io/usage-cpu"
TIMELINE_COLUMNS = (
    "t_seconds",
    "users",
    "offered_rps",
    "hpa_cpu_percent",
    "replicas_desired",
    "replicas_ready",
    "pods_pending",
    "nodes_ready",
    "response_ms",
)
EVENT_COLUMNS = ("t_seconds", "reason", "kind", "name", "message")


def pod_is_ready(pod: client.V1Pod) -> bool:
    return pod.status.phase == "Running" and any(
        c.type == "Ready" and c.status == "True" for c in (pod.status.conditions or [])
    )


@dataclass
class LoadDriver:
    core: client.CoreV1Api
    namespace: str
    selector: str  # label selector of the model server's pods
    shape: Shape
    cpu_seconds_per_request: float
    cores_per_pod: float
    period: float
    started: float = field(default_factory=time.monotonic)
    latest: tuple[int, LoadPoint] = (0, LoadPoint(0, 0, 0, 0, False))
    finished: threading.Event = field(default_factory=threading.Event)

    def step(self) -> None:
        users = self.shape.users_at(time.monotonic() - self.started)
        if users is None:
            users = 0
            self.finished.set()
        pods = self.core.list_namespaced_pod(self.namespace, label_selector=self.selector).items
        ready = [pod for pod in pods if pod_is_ready(pod)]
        point = load_point(users, len(ready), self.cpu_seconds_per_request, self.cores_per_pod)
        self.latest = (users, point)
        for pod in pods:
            cpu = point.cpu_cores_per_pod if pod in ready else 0.001
            value = millicores(cpu)
            if (pod.metadata.annotations or {}).get(USAGE_CPU_ANNOTATION) != value:
                try:
                    self.core.patch_namespaced_pod(
                        pod.metadata.name,
                        self.namespace,
                        {"metadata": {"annotations": {USAGE_CPU_ANNOTATION: value}}},
                    )
                except ApiException as error:
                    if error.status != 404:  # a pod that just went away needs no usage
                        raise

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(ApiException):  # transient; the next period retries
                self.step()
            stop.wait(self.period)


@dataclass
class TimelineRecorder:
    core: client.CoreV1Api
    autoscaling: client.AutoscalingV2Api
    apps: client.AppsV1Api
    namespace: str
    release: str  # HPA and Deployment name
    selector: str
    driver: LoadDriver
    run_dir: Path
    period: float
    started: float = field(default_factory=time.monotonic)
    rows: list[dict] = field(default_factory=list)
    events: dict[str, dict] = field(default_factory=dict)

    def sample(self) -> dict:
        t = round(time.monotonic() - self.started, 1)
        hpa = self.autoscaling.read_namespaced_horizontal_pod_autoscaler(
            self.release, self.namespace
        )
        deployment = self.apps.read_namespaced_deployment(self.release, self.namespace)
        pods = self.core.list_namespaced_pod(self.namespace, label_selector=self.selector).items
        nodes = self.core.list_node().items
        cpu_percent = ""
        for metric in hpa.status.current_metrics or []:
            if metric.resource and metric.resource.name == "cpu":
                cpu_percent = metric.resource.current.average_utilization
        users, point = self.driver.latest
        row = {
            "t_seconds": t,
            "users": users,
            "offered_rps": round(point.offered_rps, 2),
            "hpa_cpu_percent": cpu_percent if cpu_percent is not None else "",
            "replicas_desired": hpa.status.desired_replicas,
            "replicas_ready": deployment.status.ready_replicas or 0,
            "pods_pending": sum(1 for p in pods if p.status.phase == "Pending"),
            "nodes_ready": sum(
                1
                for n in nodes
                if not n.spec.unschedulable
                and any(c.type == "Ready" and c.status == "True" for c in n.status.conditions or [])
            ),
            "response_ms": ""
            if point.response_seconds == float("inf")
            else round(point.response_seconds * 1000, 1),
        }
        self.rows.append(row)
        for namespace in (self.namespace, "default"):
            for event in self.core.list_namespaced_event(namespace).items:
                if event.metadata.uid not in self.events:
                    self.events[event.metadata.uid] = {
                        "t_seconds": t,
                        "reason": event.reason,
                        "kind": event.involved_object.kind,
                        "name": event.involved_object.name,
                        "message": (event.message or "").replace("\n", " "),
                    }
        return row

    def write(self) -> tuple[Path, Path]:
        timeline = self.run_dir / "timeline.csv"
        with open(timeline, "w", newline="") as handle:
            writer = csv.DictWriter(handle, TIMELINE_COLUMNS)
            writer.writeheader()
            writer.writerows(self.rows)
        events = self.run_dir / "events.csv"
        with open(events, "w", newline="") as handle:
            writer = csv.DictWriter(handle, EVENT_COLUMNS)
            writer.writeheader()
            writer.writerows(sorted(self.events.values(), key=lambda e: e["t_seconds"]))
        return timeline, events

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(ApiException):  # transient; the next period retries
                self.sample()
            stop.wait(self.period)


def cores_per_pod(container_resources: dict, node_allocatable_cpu: str) -> float:
    """CPU one replica may use: its limit, else the node's allocatable CPU."""
    limits = (container_resources or {}).get("limits") or {}
    if limits.get("cpu"):
        return cpu_cores(limits["cpu"])
    return cpu_cores(node_allocatable_cpu)
