"""Faults injected into a running rehearsal, on its real processes: the kube-apiserver frozen
(SIGSTOP) for 20 s in the middle of the load, then metrics-server stopped (SIGTERM: it exits)
for 30 s and started again by kwokctl, as a crashed metrics-server pod is restarted. The run
must go on and end, the timeline must keep the API gap (blank cluster cells, an APIUnreachable
event), the HPA must report its missing metrics and the summary say both, and scaling must
resume once each comes back. Nothing may hang: every API call has a timeout."""

from __future__ import annotations

import csv
import os
import signal
import threading
import time
from pathlib import Path

import pytest
from kubernetes import client

from tooling.kube import api_client, list_items, pod_ready
from tooling.names import APP_NAMESPACE, SELECTOR, SERVER_NAME
from tooling.pod_usage import USAGE_CPU_ANNOTATION
from tooling.rehearsal import components
from tooling.rehearsal.cluster import kwokctl, missing_binaries
from tooling.rehearsal.profiles import profile
from tooling.rehearsal.rehearse import RehearsalClusterSpec, rehearsal_target
from tooling.report.summary import read_timeline
from tooling.runs.run_spec import LoadSpec, RunSpec
from tooling.runs.story import StorySpec, run_story

MISSING = missing_binaries()
pytestmark = [
    pytest.mark.rehearsal,
    pytest.mark.skipif(
        bool(MISSING),
        reason=f"rehearsal binaries missing ({', '.join(MISSING)}): run `make setup-rehearsal`",
    ),
]
LOAD = LoadSpec("step", variables={"STEP_USERS": "4", "STEP_SECONDS": "10", "STEPS": "12"})
# 4 → 48 users over 120 s
API_FREEZE = (15.0, 20.0)  # (seconds into the load, for how long)
METRICS_OUTAGE = (55.0, 30.0)


def frozen(cluster: str, component: str, seconds: float) -> None:
    """SIGSTOP the component's process, then SIGCONT it `seconds` later."""
    pid = components.running_pid(cluster, component)
    assert pid is not None, f"{component} is not running"
    os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(seconds)
    finally:
        os.kill(pid, signal.SIGCONT)


def stopped(cluster: str, component: str, seconds: float) -> None:
    """Stops one of kwokctl's components (its pid file goes, so the rehearsal's supervisor
    leaves it down), then has kwokctl start it again `seconds` later."""
    assert components.running_pid(cluster, component) is not None, f"{component} is not running"
    components.stop(cluster, component)
    try:
        time.sleep(seconds)
    finally:
        kwokctl("start", "cluster", f"--name={cluster}")


def first_loaded_row(timeline: Path) -> float | None:
    if not timeline.is_file():
        return None
    with open(timeline, newline="") as handle:
        loaded = [row for row in csv.DictReader(handle) if float(row["users"] or 0) > 0]
    return float(loaded[0]["t_seconds"]) if loaded else None


def inject_faults(cluster: str, run_dir: Path, windows: dict[str, tuple[float, float]]) -> None:
    """Freezes the API server, then stops metrics-server, at set times after the load began; records
    each window on the timeline's clock."""
    while (load_began := first_loaded_row(run_dir / "timeline.csv")) is None:
        time.sleep(0.5)
    seen_at = time.monotonic()

    def timeline_now() -> float:
        return load_began + time.monotonic() - seen_at

    for component, (at, seconds), fault in (
        ("kube-apiserver", API_FREEZE, frozen),
        ("metrics-server", METRICS_OUTAGE, stopped),
    ):
        time.sleep(max(0.0, load_began + at - timeline_now()))
        start = timeline_now()
        fault(cluster, component, seconds)
        windows[component] = (start, timeline_now())


def why_not_scaled_in(kubeconfig: Path) -> str:
    """What the autoscalers saw at the end, for a run that stayed scaled out: each replica's pod
    (Ready, node, the CPU written for kwok) with its metrics in metrics.k8s.io (a pod without
    them counts at 100 % of its request on a scale-down), the HPA's replicas, metric and
    conditions, and the nodes."""
    api = api_client(kubeconfig)
    lines = []
    try:
        listed = client.CustomObjectsApi(api).list_namespaced_custom_object(
            "metrics.k8s.io", "v1beta1", APP_NAMESPACE, "pods", label_selector=SELECTOR
        )
        served = {m["metadata"]["name"]: m["containers"] for m in listed["items"]}
    except client.ApiException as error:
        served = {}
        lines.append(f"metrics.k8s.io: {error.status} {error.reason}")
    core = client.CoreV1Api(api)
    for pod in list_items(core.list_namespaced_pod, APP_NAMESPACE, label_selector=SELECTOR):
        meta = pod["metadata"]
        usage = (meta.get("annotations") or {}).get(USAGE_CPU_ANNOTATION)
        cpu = [c["usage"]["cpu"] for c in served[meta["name"]]] if meta["name"] in served else None
        lines.append(
            f"pod {meta['name']}: ready {pod_ready(pod)}, node {pod['spec'].get('nodeName')}, "
            f"{USAGE_CPU_ANNOTATION} {usage}, metrics.k8s.io cpu {cpu or 'NONE'}"
            + (", being deleted" if meta.get("deletionTimestamp") else "")
        )
    status = (
        client.AutoscalingV2Api(api)
        .read_namespaced_horizontal_pod_autoscaler(SERVER_NAME, APP_NAMESPACE)
        .status
    )
    utilization = [
        m.resource.current.average_utilization for m in status.current_metrics or [] if m.resource
    ]
    lines.append(
        f"HPA: {status.current_replicas} → {status.desired_replicas} replicas, "
        f"CPU {utilization} % of requests"
    )
    lines += [f"HPA {c.type} {c.status} {c.reason}: {c.message}" for c in status.conditions or []]
    nodes = [
        (
            n["metadata"]["name"],
            [c["status"] for c in n["status"].get("conditions") or [] if c["type"] == "Ready"],
        )
        for n in list_items(core.list_node)
    ]
    lines.append("nodes (Ready): " + ", ".join(f"{name} {ready}" for name, ready in nodes))
    return "\n".join(lines)


def diagnosed(kubeconfig: Path) -> str:
    """why_not_scaled_in, or why it could not be read (the run's own failure stays the one
    reported)."""
    try:
        return why_not_scaled_in(kubeconfig)
    except Exception as error:  # a diagnosis must not hide the failure
        return f"(could not read the cluster's state: {error!r})"


@pytest.fixture(scope="module")
def faulted_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("faults")
    cluster = RehearsalClusterSpec(
        run_dir / "kubeconfig", name=f"faults-{os.getpid()}", profile=profile("fast")
    )
    windows: dict[str, tuple[float, float]] = {}
    run = RunSpec(run_dir, LOAD, down=True)
    with rehearsal_target(cluster, run, say=print) as target:
        injector = threading.Thread(
            target=inject_faults, args=(cluster.name, run_dir, windows), daemon=True
        )
        injector.start()
        result = run_story(target, StorySpec(run_dir), say=print)
        injector.join(timeout=5)
        why = "" if result.scaled_in else diagnosed(target.kubeconfig)
    with open(result.events, newline="") as handle:
        events = list(csv.DictReader(handle))
    return result, read_timeline(result.timeline), events, windows, why


def test_the_run_outlives_a_frozen_api_server_and_keeps_the_gap(faulted_run):
    result, rows, events, windows, why = faulted_run
    start, end = windows["kube-apiserver"]
    # the run went on to its end, replicas and nodes back down
    assert result.scaled_in, f"not scaled back in; at the end:\n{why}"
    gap = [row for row in rows if row["replicas_ready"] is None]
    assert gap and all(start - 1 <= row["t_seconds"] <= end + 12 for row in gap)
    assert any(row["replicas_ready"] is not None for row in rows if row["t_seconds"] > end + 12)
    unreachable = [e for e in events if e["reason"] == "APIUnreachable"]
    assert unreachable and start - 1 <= float(unreachable[0]["t_seconds"]) <= end
    assert 8 <= result.summary.api_unreachable_seconds <= end - start + 15
    assert "API server unreachable for" in (result.timeline.parent / "summary.txt").read_text()


def test_a_stopped_metrics_server_is_reported_and_the_hpa_recovers(faulted_run):
    result, rows, events, windows, _ = faulted_run
    start, end = windows["metrics-server"]
    missing = [
        e
        for e in events
        if e["reason"] == "FailedGetResourceMetric" and start <= float(e["t_seconds"]) <= end + 15
    ]
    assert missing, "the HPA never said it lacked metrics while metrics-server was down"
    # counted while the HPA says it cannot get its metric (ScalingActive False)
    assert 0 < result.summary.hpa_blind_seconds <= end - start + 15
    assert "HPA without CPU metrics for" in (result.timeline.parent / "summary.txt").read_text()
    back = [r for r in rows if r["t_seconds"] > end + 20 and (r["users"] or 0) > 0]
    assert back and any(r["hpa_cpu_percent"] is not None for r in back)  # metrics again
