"""The run's record: timeline.csv and events.csv, sampled from the API every few seconds.

timeline.csv's columns are a contract (`report`, `compare` and the e2e tests read them):

    t_seconds, users, offered_rps, hpa_cpu_percent, replicas_desired, replicas_ready,
    pods_pending, nodes_ready, response_ms, p50_ms, p95_ms, failures, hpa_external_value

`hpa_cpu_percent` is blank while the HPA cannot get its metric (its ScalingActive condition
is False, e.g. metrics-server not answering). `hpa_external_value` (last, added with the
request-driven mode) is the current value of the HPA's External metric, per replica for an
AverageValue target (KEDA's HPA: the request signal divided by the replicas); blank when the
HPA has none or cannot get it. The HPA is the one that scales the model server's Deployment:
the chart's (named like it) or, in KEDA mode, the one KEDA made (`keda-hpa-<name>`).
`users`, `offered_rps` and the latency columns come from the run's load source: the load model
in the rehearsal (`response_ms` is its mean response time; no percentiles, no failures), the
Locust master's live stats on real clusters (`response_ms` is the current median; `offered_rps`
is Locust's current rate, held through samples taken before the master refreshed its numbers,
0 with no users or once no request has completed for a while). The rest is read from the API:
HPA status, the Deployment, its Pods and the Nodes; those cells are blank in rows sampled while
the API server did not answer. events.csv holds every Kubernetes event seen (SuccessfulRescale,
TriggeredScaleUp, ScaleDown, FailedScheduling…) and the recorder's own APIUnreachable, when the
API server stopped answering.
"""

from __future__ import annotations

import csv
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from kubernetes import client

from tooling.errors import one_line
from tooling.kube import list_items, node_takes_pods
from tooling.quantities import quantity
from tooling.runs.transient import TRANSIENT_ERRORS

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
    "p50_ms",
    "p95_ms",
    "failures",
    "hpa_external_value",
)
# Read from the API server; blank in rows sampled while it did not answer.
CLUSTER_COLUMNS = (
    "hpa_cpu_percent",
    "hpa_external_value",
    "replicas_desired",
    "replicas_ready",
    "pods_pending",
    "nodes_ready",
)
EVENT_COLUMNS = ("t_seconds", "reason", "kind", "name", "message")


@dataclass(frozen=True)
class LoadSample:
    """What the load source says about now; None where it cannot know."""

    users: int = 0
    offered_rps: float = 0.0
    response_ms: float | None = None
    p50_ms: float | None = None
    p95_ms: float | None = None
    failures: int | None = None


class LoadSource(Protocol):
    """Drives or watches the load: `run` loops until `stop`; `finished` is set when the shape
    has ended, at most `max_seconds` after the load began."""

    finished: threading.Event
    max_seconds: float

    def latest(self) -> LoadSample: ...

    def run(self, stop: threading.Event) -> None: ...


def blank_if_none(value: object) -> object:
    return "" if value is None else value


def read_server_hpa(
    autoscaling: client.AutoscalingV2Api, namespace: str, deployment: str
) -> client.V2HorizontalPodAutoscaler:
    """The HPA that scales the Deployment: the chart's, named like it, else the one whose
    scaleTargetRef names it (KEDA's `keda-hpa-<ScaledObject>`); a 404 ApiException when none
    does (yet: KEDA makes its HPA a moment after the ScaledObject)."""
    try:
        return autoscaling.read_namespaced_horizontal_pod_autoscaler(deployment, namespace)
    except client.ApiException as error:
        if error.status != 404:
            raise
    for hpa in autoscaling.list_namespaced_horizontal_pod_autoscaler(namespace).items:
        target = hpa.spec.scale_target_ref
        if target.kind == "Deployment" and target.name == deployment:
            return hpa
    raise client.ApiException(status=404, reason=f"no HPA scales the Deployment {deployment}")


def external_value(hpa: client.V2HorizontalPodAutoscaler) -> float | None:
    """The current value of the HPA's first External metric (its average per replica for an
    AverageValue target); None if it has none."""
    for metric in hpa.status.current_metrics or []:
        if metric.type == "External" and metric.external and metric.external.current:
            current = metric.external.current
            value = current.average_value if current.average_value is not None else current.value
            return None if value is None else quantity(value)
    return None


@dataclass
class TimelineRecorder:
    core: client.CoreV1Api
    autoscaling: client.AutoscalingV2Api
    apps: client.AppsV1Api
    namespace: str
    release: str  # the Deployment's name (its HPA is found by it: read_server_hpa)
    selector: str  # label selector of the model server's pods
    load: LoadSource
    run_dir: Path
    period: float
    started: float = field(default_factory=time.monotonic)
    rows: list[dict] = field(default_factory=list)
    events: dict[str, dict] = field(default_factory=dict)
    event_namespaces: tuple[str, ...] = ("default", "kube-system")
    unreachable_since: float | None = None  # when the API server stopped answering
    event_counts: dict[str, int] = field(default_factory=dict)  # each event's count when seen

    def sample(self) -> dict:
        """One row: the load source's numbers and the cluster's. While the API server does not
        answer, the cluster's columns stay blank (the gap is in the timeline) and an
        `APIUnreachable` event says when it began."""
        t = round(time.monotonic() - self.started, 1)
        load = self.load.latest()
        row = {
            "t_seconds": t,
            "users": load.users,
            "offered_rps": round(load.offered_rps, 2),
            **dict.fromkeys(CLUSTER_COLUMNS, ""),
            "response_ms": blank_if_none(
                None if load.response_ms is None else round(load.response_ms, 1)
            ),
            "p50_ms": blank_if_none(load.p50_ms),
            "p95_ms": blank_if_none(load.p95_ms),
            "failures": blank_if_none(load.failures),
        }
        try:
            row.update(self.cluster_columns())
            self.collect_events(t)
            self.unreachable_since = None
        except TRANSIENT_ERRORS as error:
            if self.unreachable_since is None:
                self.unreachable_since = t
                self.events[f"unreachable-{t}"] = {
                    "t_seconds": t,
                    "reason": "APIUnreachable",
                    "kind": "APIServer",
                    "name": "kube-apiserver",
                    "message": one_line(error, 300),
                }
        self.rows.append(row)
        self.append(row)
        return row

    def cluster_columns(self) -> dict:
        """HPA status, the Deployment, its Pods and the Nodes, as read from the API now."""
        hpa = read_server_hpa(self.autoscaling, self.namespace, self.release)
        deployment = self.apps.read_namespaced_deployment(self.release, self.namespace)
        pods = list_items(
            self.core.list_namespaced_pod, self.namespace, label_selector=self.selector
        )
        nodes = self.core.list_node().items
        cpu_percent = None
        for metric in hpa.status.current_metrics or []:
            if metric.resource and metric.resource.name == "cpu":
                cpu_percent = metric.resource.current.average_utilization
        external = external_value(hpa)
        if any(
            c.type == "ScalingActive" and c.status == "False" for c in hpa.status.conditions or []
        ):
            # the HPA could not get its metric: what it showed is stale
            cpu_percent = external = None
        return {
            "hpa_cpu_percent": blank_if_none(cpu_percent),
            "hpa_external_value": blank_if_none(None if external is None else round(external, 3)),
            "replicas_desired": hpa.status.desired_replicas,
            "replicas_ready": deployment.status.ready_replicas or 0,
            "pods_pending": sum(1 for p in pods if p["status"].get("phase") == "Pending"),
            "nodes_ready": sum(1 for n in nodes if node_takes_pods(n)),
        }

    def collect_events(self, t: float) -> None:
        """New events, and each recurrence of a known one (Kubernetes counts a repeated event
        on the same object instead of making a new one: a HPA failing again, say)."""
        for namespace in (self.namespace, *self.event_namespaces):
            # as plain JSON: a large run keeps thousands of events
            for event in list_items(self.core.list_namespaced_event, namespace):
                uid, count = event["metadata"]["uid"], event.get("count") or 1
                seen = self.event_counts.get(uid)
                if seen is not None and count <= seen:
                    continue
                self.event_counts[uid] = count
                key = uid if seen is None else f"{uid}#{count}"
                self.events[key] = {
                    "t_seconds": t,
                    "reason": event.get("reason"),
                    "kind": event["involvedObject"].get("kind"),
                    "name": event["involvedObject"].get("name"),
                    "message": (event.get("message") or "").replace("\n", " "),
                }

    @property
    def timeline(self) -> Path:
        return self.run_dir / "timeline.csv"

    def append(self, row: dict) -> None:
        """Adds the row to timeline.csv at once (a header first when the file is new), so the
        file is readable while the run goes and survives an interrupted one."""
        new = not self.timeline.is_file() or self.timeline.stat().st_size == 0
        columns = TIMELINE_COLUMNS
        if not new:  # `watch` going on with an older run's file keeps the columns it has
            with open(self.timeline, newline="") as handle:
                columns = tuple(next(csv.reader(handle), TIMELINE_COLUMNS))
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with open(self.timeline, "a", newline="") as handle:
            writer = csv.DictWriter(handle, columns, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow(row)

    def write(self, append_events: bool = False) -> tuple[Path, Path]:
        """Writes events.csv (timeline.csv is written as rows come); returns both paths.
        With append_events, events already in the file are kept and not repeated."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        events = self.run_dir / "events.csv"
        seen = sorted(self.events.values(), key=lambda e: e["t_seconds"])
        kept: list[dict] = []
        if append_events and events.is_file():
            with open(events, newline="") as handle:
                kept = list(csv.DictReader(handle))
            known = {(e["reason"], e["name"], e["message"]) for e in kept}
            seen = [e for e in seen if (e["reason"], e["name"], e["message"]) not in known]
        with open(events, "w", newline="") as handle:
            writer = csv.DictWriter(handle, EVENT_COLUMNS)
            writer.writeheader()
            writer.writerows([*kept, *seen])
        return self.timeline, events

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.sample()
            stop.wait(self.period)
