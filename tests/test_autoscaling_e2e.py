"""End to end: the autoscaling story on a cluster, then assertions on its timeline and events.

(a) the HPA raises replicas after load rises; (b) a replica goes Pending when the nodes are
full and a node is added for it; (c) at the node cap a replica stays Pending; (d) replicas
return to minReplicas after load stops; (e) nodes scale back down; (f) only the real Cluster
Autoscaler passes: the replica left Pending at the cap gets its NotTriggerScaleUp event.

On the rehearsal the same run also takes two faults, injected into its real processes once
a replica is Pending at the node cap (or a minute into the load), where they mask nothing
asserted above: metrics-server stopped (SIGTERM: it exits) for 30 s and started again by
kwokctl, as a crashed metrics-server pod is restarted, then the kube-apiserver frozen (SIGSTOP)
for 20 s. The run must go on and end, the timeline must keep the API gap (blank cluster
cells, an APIUnreachable event), the HPA must report its missing metrics and the summary say
both, and scaling must resume once each comes back. Nothing may hang: every API call has a
timeout.

The cluster is a fixture with two kinds:
- `rehearsal` (default): real kube-apiserver, controller-manager (the real HPA controller),
  scheduler and metrics-server; kwok nodes and pods; the replica fleet and real Locust; the
  fast profile; the real Cluster Autoscaler where `make setup-rehearsal` built it, else the
  stand-in (the report says which).
- `existing`: a cluster with real pods. By default the node cluster on this machine (the
  `node_cluster` fixture: real model-server pods of the TF Serving stand-in, real Locust pods,
  Services through kube-proxy, the HPA on the CPU the pods really burn; a short step shape, 2
  → 8 users over 60 s). With RESNET_SERVING_E2E_KUBECONFIG, any cluster from that kubeconfig —
  kind or GKE (RESNET_SERVING_E2E_PROVIDER, default kind) with real TF Serving pods loading the
  model from RESNET_SERVING_E2E_MODEL_URI and real Locust load (the lab's step shape unless
  RESNET_SERVING_E2E_STEP_SECONDS / _STEPS / _STEP_USERS say otherwise). The node cluster and
  kind have no node autoscaler, so the node tests skip there, saying so, and no fault is
  injected there.
The live cluster is also looked at through pytest-helm-charts' `kube_cluster`.
"""

from __future__ import annotations

import csv
import itertools
import os
import signal
import threading
import time
from pathlib import Path

import pytest
from kubernetes import client
from pytest_helm_charts.k8s.deployment import wait_for_deployments_to_run

from tooling import releases
from tooling.kube import REQUEST_TIMEOUT, api_client, list_items, pod_ready
from tooling.names import APP_NAMESPACE, LOAD_RELEASE, RELEASE, SELECTOR, SERVER_NAME
from tooling.pod_usage import USAGE_CPU_ANNOTATION
from tooling.providers.node import node_story_target
from tooling.rehearsal import cluster_autoscaler, components
from tooling.rehearsal.cluster import kwokctl, missing_binaries
from tooling.rehearsal.node_autoscalers import NOT_BUILT
from tooling.rehearsal.profiles import profile
from tooling.rehearsal.rehearse import RehearsalClusterSpec, rehearsal_target
from tooling.report.summary import read_timeline
from tooling.runs.existing_cluster import existing_cluster_target
from tooling.runs.locust_load import LocustSettings
from tooling.runs.run_spec import LoadSpec, RunSpec
from tooling.runs.story import StorySpec, run_story
from tooling.waiting import wait_for

E2E_KUBECONFIG = "RESNET_SERVING_E2E_KUBECONFIG"
E2E_PROVIDER = "RESNET_SERVING_E2E_PROVIDER"
E2E_MODEL_URI = "RESNET_SERVING_E2E_MODEL_URI"
pytestmark = [pytest.mark.e2e, pytest.mark.rehearsal]
# 5 users, then 55 from 10 s to 170 s: past the node cap, and long enough for both faults (at
# the latest FAULTS_AT_THE_LATEST into the load, 30 s and 20 s) and the load after them in which
# the recorder must read the API again
REHEARSAL_LOAD = LoadSpec(
    "spike",
    variables={
        "SPIKE_BASE_USERS": "5",
        "SPIKE_USERS": "55",
        "SPIKE_START": "10",
        "SPIKE_SECONDS": "160",
        "SPIKE_TOTAL_SECONDS": "170",
        "SPIKE_SPAWN_RATE": "10",
    },
)
NODE_CAP = 3  # the rehearsal's node pool max
API_FREEZE_SECONDS = 20.0
METRICS_OUTAGE_SECONDS = 30.0
METRICS_BACK_SECONDS = 180.0  # a limit only: how long metrics.k8s.io may take to come back
FAULTS_AT_THE_LATEST = 50.0  # seconds into the load, if the cap has not been reached by then
# The fault tests' bounds, from the run's own settings: the recorder samples every
# FAST.sample_seconds and an API call gives up after REQUEST_TIMEOUT (connect, read); the HPA
# syncs every FAST.hpa_sync_seconds and metrics-server scrapes every
# FAST.metric_resolution_seconds.
FAST = profile("fast")
API_CALL_SECONDS = sum(REQUEST_TIMEOUT)  # the longest one sample's read can hang
HPA_SEES_METRICS_SECONDS = 2 * FAST.metric_resolution_seconds + FAST.hpa_sync_seconds


@pytest.fixture(
    scope="module", params=["rehearsal", pytest.param("existing", marks=pytest.mark.node)]
)
def story_target(request, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp(request.param)
    if request.param == "rehearsal":
        missing = missing_binaries()
        if missing:
            pytest.skip(
                f"rehearsal binaries missing ({', '.join(missing)}): run `make setup-rehearsal` "
                "(make test does), or point RESNET_SERVING_TOOLS at a folder that has them"
            )
        cluster = RehearsalClusterSpec(
            run_dir / "kubeconfig", name=f"resnet-e2e-{os.getpid()}", profile=profile("fast")
        )
        run = RunSpec(run_dir, REHEARSAL_LOAD, down=True)
        with rehearsal_target(cluster, run, say=print) as target:
            yield target, run_dir, cluster.name
        return
    environment = {
        key: os.environ[f"RESNET_SERVING_E2E_{key}"]
        for key in ("STEP_SECONDS", "STEPS", "STEP_USERS")
        if f"RESNET_SERVING_E2E_{key}" in os.environ
    }
    kubeconfig = os.environ.get(E2E_KUBECONFIG)
    if kubeconfig:
        target = existing_cluster_target(
            Path(kubeconfig),
            os.environ.get(E2E_PROVIDER, "kind"),
            os.environ.get(E2E_MODEL_URI, ""),
            LocustSettings(shape="step", environment=environment),
        )
        yield target, run_dir, None
        return
    # Else the node cluster on this machine: real model-server and Locust pods, real CPU.
    node = request.getfixturevalue("node_cluster")
    step = {"STEP_USERS": "2", "STEP_SECONDS": "15", "STEPS": "4", **environment}
    run = RunSpec(run_dir, LoadSpec("step", variables=step))
    settings = run.load.locust_settings(15.0)
    try:
        yield node_story_target(node.kubeconfig, run, settings, print), run_dir, None
    finally:  # the node cluster is shared: its CPU goes back to the tests after these
        core = client.CoreV1Api(api_client(node.kubeconfig))
        for release in (LOAD_RELEASE, RELEASE):
            releases.uninstall(node.kubeconfig, release, APP_NAMESPACE, wait=True)
        wait_for(
            lambda: not core.list_namespaced_pod(APP_NAMESPACE).items,
            180,
            f"the pods of {APP_NAMESPACE} to be gone",
        )


@pytest.fixture(scope="module")
def kube_config(story_target) -> str:
    """pytest-helm-charts' `kube_cluster` connects to the story's cluster."""
    return str(story_target[0].kubeconfig)


@pytest.fixture(scope="module")
def story(story_target):
    """The run, its timeline and events, and on the rehearsal the faults' windows and, if it
    did not scale back in, what the autoscalers saw at the end."""
    target, run_dir, rehearsal_name = story_target
    windows: dict[str, tuple[float, float]] = {}
    injector = None
    if rehearsal_name is not None:
        injector = threading.Thread(
            target=inject_faults,
            args=(rehearsal_name, target.kubeconfig, run_dir, windows),
            daemon=True,
        )
        injector.start()
    result = run_story(target, StorySpec(run_dir), say=print)
    if injector is not None:
        injector.join(timeout=5)
    why = "" if result.scaled_in else diagnosed(target.kubeconfig)
    with open(result.events, newline="") as handle:
        events = list(csv.DictReader(handle))
    return target, result, read_timeline(result.timeline), events, windows, why


@pytest.fixture
def faults(story):
    target, result, rows, events, windows, _ = story
    if target.provider != "rehearsal":
        pytest.skip(
            f"faults are injected into the rehearsal's own processes, not {target.provider}'s"
        )
    assert set(windows) == {"kube-apiserver", "metrics-server"}, f"faults injected: {windows}"
    return result, rows, events, windows


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


def at_the_cap(row: dict) -> bool:
    """A replica the HPA wants is Pending while the pool is at its cap: test (c)'s moment."""
    return (
        row["nodes_ready"] == NODE_CAP
        and (row["replicas_desired"] or 0) > (row["replicas_ready"] or 0)
        and bool(row["pods_pending"])
    )


def recorded_rows(timeline: Path) -> list[dict]:
    """The timeline's rows so far (none while it is missing or its last line half-written)."""
    try:
        return read_timeline(timeline)
    except (OSError, ValueError, TypeError):
        return []


def replica_metrics(api: client.ApiClient) -> list[dict]:
    """The replicas' entries in metrics.k8s.io (ApiException while it does not answer)."""
    return client.CustomObjectsApi(api).list_namespaced_custom_object(
        "metrics.k8s.io", "v1beta1", APP_NAMESPACE, "pods", label_selector=SELECTOR
    )["items"]


def replica_metrics_served(kubeconfig: Path) -> bool:
    """metrics.k8s.io answers with the replicas' metrics."""
    try:
        return bool(replica_metrics(api_client(kubeconfig)))
    except client.ApiException:
        return False


def hpa_reads_its_metric(kubeconfig: Path) -> bool:
    """The HPA computes replicas from its metric again (ScalingActive True)."""
    status = (
        client.AutoscalingV2Api(api_client(kubeconfig))
        .read_namespaced_horizontal_pod_autoscaler(SERVER_NAME, APP_NAMESPACE)
        .status
    )
    return any(c.type == "ScalingActive" and c.status == "True" for c in status.conditions or [])


def inject_faults(
    cluster: str, kubeconfig: Path, run_dir: Path, windows: dict[str, tuple[float, float]]
) -> None:
    """Once the load runs and a replica is Pending at the cap (at the latest
    FAULTS_AT_THE_LATEST into the load), stops metrics-server, then, once the HPA reads its
    metric again, freezes the API server; records each window on the timeline's clock.

    In that order, and one after the other: the API server's freeze makes the controller-manager
    and the scheduler exit (their leases lapse), and the supervisor's `kwokctl start cluster`,
    which brings them back, would bring a stopped metrics-server back with them; and a freeze
    while the HPA is still blind would lengthen what the metrics test measures."""
    timeline = run_dir / "timeline.csv"
    while not (loaded := [r for r in recorded_rows(timeline) if (r["users"] or 0) > 0]):
        time.sleep(0.5)
    load_began, seen_at = loaded[0]["t_seconds"], time.monotonic()

    def timeline_now() -> float:
        return load_began + time.monotonic() - seen_at

    while timeline_now() < load_began + FAULTS_AT_THE_LATEST and not any(
        at_the_cap(row) for row in recorded_rows(timeline)
    ):
        time.sleep(0.5)
    start = timeline_now()
    stopped(cluster, "metrics-server", METRICS_OUTAGE_SECONDS)
    # The outage lasts until metrics.k8s.io serves the replicas again: the restarted
    # metrics-server has scraped twice, and the API server's aggregator, which marked it
    # unavailable, has found it again (its recheck, not a setting of the run, sets how long).
    wait_for(
        lambda: replica_metrics_served(kubeconfig),
        METRICS_BACK_SECONDS,
        "metrics.k8s.io to serve the replicas' metrics again",
        period=1,
    )
    windows["metrics-server"] = (start, timeline_now())
    wait_for(
        lambda: hpa_reads_its_metric(kubeconfig),
        3 * HPA_SEES_METRICS_SECONDS,
        "the HPA to read its metric again",
    )
    start = timeline_now()
    frozen(cluster, "kube-apiserver", API_FREEZE_SECONDS)
    windows["kube-apiserver"] = (start, timeline_now())


def why_not_scaled_in(kubeconfig: Path) -> str:
    """What the autoscalers saw at the end, for a run that stayed scaled out: each replica's pod
    (Ready, node, the CPU written for kwok) with its metrics in metrics.k8s.io (a pod without
    them counts at 100 % of its request on a scale-down), the HPA's replicas, metric and
    conditions, and the nodes."""
    api = api_client(kubeconfig)
    lines = []
    try:
        served = {m["metadata"]["name"]: m["containers"] for m in replica_metrics(api)}
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


@pytest.fixture
def node_story(story):
    target = story[0]
    if not target.node_autoscaling:
        pytest.skip(f"{target.provider} has no cluster autoscaler: node scaling is not tested")
    return story


def first_time(rows, predicate):
    return next((row["t_seconds"] for row in rows if predicate(row)), None)


def answered(rows: list[dict]) -> list[dict]:
    """The rows whose cluster cells the API server answered (not the fault's gap)."""
    return [row for row in rows if row["replicas_ready"] is not None]


def test_a_hpa_raises_replicas_after_load_rises(story):
    _, _, all_rows, events, _, _ = story
    rows = answered(all_rows)
    load_start = first_time(rows, lambda r: r["users"] > 0)
    scaled = first_time(rows, lambda r: r["replicas_desired"] > 1)
    assert load_start is not None and scaled is not None and scaled > load_start
    assert any(e["reason"] == "SuccessfulRescale" for e in events)


def test_b_pending_replica_gets_a_new_node(node_story):
    _, _, all_rows, events, _, _ = node_story
    rows = answered(all_rows)
    pending = first_time(rows, lambda r: r["pods_pending"] > 0)
    more_nodes = first_time(rows, lambda r: r["nodes_ready"] > rows[0]["nodes_ready"])
    assert pending is not None and more_nodes is not None and more_nodes > pending
    assert any(e["reason"] == "TriggeredScaleUp" for e in events)


def test_c_at_the_node_cap_a_replica_stays_pending(node_story):
    _, _, all_rows, _, _, _ = node_story
    rows = answered(all_rows)
    cap = max(r["nodes_ready"] for r in rows)
    assert any(
        r["nodes_ready"] == cap
        and r["replicas_desired"] > r["replicas_ready"]
        and r["pods_pending"]
        for r in rows
    )
    assert cap == 3  # the node pool's max


def test_d_replicas_return_to_min_after_load_stops(story, kube_cluster):
    _, result, rows, _, _, why = story
    load_end = max(r["t_seconds"] for r in rows if (r["users"] or 0) > 0)
    assert result.scaled_in, f"not scaled back in; at the end:\n{why}"
    assert rows[-1]["replicas_ready"] == 1 and rows[-1]["t_seconds"] > load_end
    # and the live cluster agrees: the Deployment runs, at minReplicas
    (deployment,) = wait_for_deployments_to_run(
        kube_cluster.kube_client, [SERVER_NAME], APP_NAMESPACE, timeout_sec=60
    )
    assert deployment.obj["status"]["readyReplicas"] == 1


def test_e_nodes_scale_back_down(node_story):
    _, _, all_rows, events, _, _ = node_story
    rows = answered(all_rows)
    assert rows[-1]["nodes_ready"] == rows[0]["nodes_ready"]
    assert any(e["reason"] == "ScaleDown" for e in events)


def test_f_at_the_cap_the_real_autoscaler_says_the_group_is_full(node_story):
    target, _, _, events, _, _ = node_story
    if target.provider == "rehearsal" and cluster_autoscaler.binary() is None:
        pytest.skip(f"the stand-in ran; this needs the real autoscaler: {NOT_BUILT}")
    refused = [e for e in events if e["reason"] == "NotTriggerScaleUp" and e["kind"] == "Pod"]
    assert refused, "no NotTriggerScaleUp event for the replica left Pending at the node cap"
    assert any("max node group size reached" in e["message"] for e in refused)


def test_g_clients_latency_and_failures_come_from_locust(story):
    """The rehearsal's load is real Locust on the replica fleet (kind and GKE: the Locust
    chart): its p50, p95 and failures are in the timeline while users are on."""
    _, result, rows, _, _, _ = story
    loaded = [r for r in rows if (r["users"] or 0) > 0]
    measured = [r for r in loaded if r["p50_ms"] is not None and r["p95_ms"] is not None]
    assert len(measured) >= len(loaded) // 2
    assert all(0 < r["p50_ms"] <= r["p95_ms"] for r in measured)
    assert all(r["failures"] is not None for r in measured)
    assert result.summary.failures is not None


def test_the_report_names_the_node_autoscaler(story):
    target, result, _, _, _, _ = story
    lines = (result.timeline.parent / "summary.txt").read_text().splitlines()
    named = [line for line in lines if line.startswith("node autoscaler ")]
    assert named and named[0].endswith(f" {target.node_autoscaler or 'none'}")
    summary = "\n".join(lines)
    if target.provider == "rehearsal" and cluster_autoscaler.binary() is not None:
        assert f"cluster-autoscaler {cluster_autoscaler.version()}" in summary
        assert (result.timeline.parent / "cluster-autoscaler.log").is_file()


def test_watch_appends_live_samples_of_the_cluster(story, tmp_path, capsys):
    from tooling import cli

    target, _, rows, _, _, _ = story
    flags = ["--kubeconfig", str(target.kubeconfig), "--run-dir", str(tmp_path), "--interval", "1"]
    assert cli.run(["watch", *flags, "--samples", "2"]) == 0
    assert cli.run(["watch", *flags, "--samples", "2"]) == 0  # appends, the clock goes on
    watched = read_timeline(tmp_path / "timeline.csv")
    assert len(watched) == 4
    assert all(a["t_seconds"] < b["t_seconds"] for a, b in itertools.pairwise(watched))
    assert {row["replicas_ready"] for row in watched} == {1}
    assert {row["nodes_ready"] for row in watched} == {rows[0]["nodes_ready"]}
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 4 and "replicas 1/1" in printed[-1]


def test_the_run_outlives_a_frozen_api_server_and_keeps_the_gap(faults):
    result, rows, events, windows = faults
    start, end = windows["kube-apiserver"]
    # the run went on to its end (back down: test d); the gap is the freeze, give or take
    # one sample and the read that hung on it
    sample, late = FAST.sample_seconds, FAST.sample_seconds + API_CALL_SECONDS
    gap = [row for row in rows if row["replicas_ready"] is None]
    assert gap and all(start - sample <= row["t_seconds"] <= end + late for row in gap), gap
    assert any(row["replicas_ready"] is not None for row in rows if row["t_seconds"] > end + late)
    unreachable = [e for e in events if e["reason"] == "APIUnreachable"]
    assert unreachable and start - sample <= float(unreachable[0]["t_seconds"]) <= end
    # at least the freeze less one sample and one whole API call (a call that hung into the
    # freeze and was answered when it ended counts as answered); at most the freeze and late
    shortest = API_FREEZE_SECONDS - API_CALL_SECONDS - sample
    assert shortest <= result.summary.api_unreachable_seconds <= end - start + late
    assert "API server unreachable for" in (result.timeline.parent / "summary.txt").read_text()


def test_a_stopped_metrics_server_is_reported_and_the_hpa_recovers(faults):
    result, rows, events, windows = faults
    start, end = windows["metrics-server"]  # until metrics.k8s.io served the replicas again
    # the HPA reads them at its next sync, the recorder sees that at its next sample
    recovered = end + FAST.hpa_sync_seconds + FAST.sample_seconds + API_CALL_SECONDS
    missing = [
        e
        for e in events
        if e["reason"] == "FailedGetResourceMetric" and start <= float(e["t_seconds"]) <= recovered
    ]
    assert missing, "the HPA never said it lacked metrics while metrics-server was down"
    # counted while the HPA says it cannot get its metric (ScalingActive False)
    assert 0 < result.summary.hpa_blind_seconds <= recovered - start
    assert "HPA without CPU metrics for" in (result.timeline.parent / "summary.txt").read_text()
    back = [r for r in rows if r["t_seconds"] > recovered and (r["users"] or 0) > 0]
    assert back and any(r["hpa_cpu_percent"] is not None for r in back)  # metrics again
