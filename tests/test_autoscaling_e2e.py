"""End to end: the autoscaling story on a cluster, then assertions on its timeline and events.

(a) the HPA raises replicas after load rises; (b) a replica goes Pending when the nodes are
full and a node is added for it; (c) at the node cap a replica stays Pending; (d) replicas
return to minReplicas after load stops; (e) nodes scale back down; (f) only the real Cluster
Autoscaler passes: the replica left Pending at the cap gets its NotTriggerScaleUp event.

The cluster is a fixture with two kinds:
- `rehearsal` (default): real kube-apiserver, controller-manager (the real HPA controller),
  scheduler and metrics-server; kwok nodes and pods; the load model for CPU; the fast profile;
  the real Cluster Autoscaler where `make setup-rehearsal` built it, else the stand-in (the
  report says which).
- `existing`: a cluster with real pods. By default the node cluster on this machine (the
  `node_cluster` fixture: real model-server pods of the TF Serving stand-in, real Locust pods,
  Services through kube-proxy, the HPA on the CPU the pods really burn; a short step shape, 2
  → 8 users over 60 s). With RESNET_SERVING_E2E_KUBECONFIG, any cluster from that kubeconfig —
  kind or GKE (RESNET_SERVING_E2E_PROVIDER, default kind) with real TF Serving pods loading the
  model from RESNET_SERVING_E2E_MODEL_URI and real Locust load (the lab's step shape unless
  RESNET_SERVING_E2E_STEP_SECONDS / _STEPS / _STEP_USERS say otherwise). The node cluster and
  kind have no node autoscaler, so the node tests skip there, saying so.
The live cluster is also looked at through pytest-helm-charts' `kube_cluster`.
"""

from __future__ import annotations

import csv
import itertools
import os
from pathlib import Path

import pytest
from kubernetes import client
from pytest_helm_charts.k8s.deployment import wait_for_deployments_to_run

from tooling import releases
from tooling.kube import api_client
from tooling.names import APP_NAMESPACE, LOAD_RELEASE, RELEASE, SERVER_NAME
from tooling.providers.node import node_story_target
from tooling.rehearsal import cluster_autoscaler
from tooling.rehearsal.cluster import missing_binaries
from tooling.rehearsal.node_autoscalers import NOT_BUILT
from tooling.rehearsal.profiles import profile
from tooling.rehearsal.rehearse import RehearsalClusterSpec, rehearsal_target
from tooling.report.summary import read_timeline
from tooling.runs.existing_cluster import existing_cluster_target
from tooling.runs.locust_load import LocustSettings
from tooling.runs.run_spec import LoadSpec, RunSpec
from tooling.runs.story import StorySpec, run_story, wait_for

E2E_KUBECONFIG = "RESNET_SERVING_E2E_KUBECONFIG"
E2E_PROVIDER = "RESNET_SERVING_E2E_PROVIDER"
E2E_MODEL_URI = "RESNET_SERVING_E2E_MODEL_URI"
pytestmark = [pytest.mark.e2e, pytest.mark.rehearsal]


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
        step = {"STEP_USERS": "5", "STEP_SECONDS": "10", "STEPS": "11"}  # 5 → 55 users, 110 s
        run = RunSpec(run_dir, LoadSpec("step", variables=step), down=True)
        with rehearsal_target(cluster, run, say=print) as target:
            yield target, run_dir
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
        yield target, run_dir
        return
    # Else the node cluster on this machine: real model-server and Locust pods, real CPU.
    node = request.getfixturevalue("node_cluster")
    step = {"STEP_USERS": "2", "STEP_SECONDS": "15", "STEPS": "4", **environment}
    run = RunSpec(run_dir, LoadSpec("step", variables=step))
    settings = run.load.locust_settings(15.0)
    try:
        yield node_story_target(node.kubeconfig, run, settings, print), run_dir
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
    target, run_dir = story_target
    result = run_story(target, StorySpec(run_dir), say=print)
    with open(result.events, newline="") as handle:
        events = list(csv.DictReader(handle))
    return target, result, read_timeline(result.timeline), events


@pytest.fixture
def node_story(story):
    target = story[0]
    if not target.node_autoscaling:
        pytest.skip(f"{target.provider} has no cluster autoscaler: node scaling is not tested")
    return story


def first_time(rows, predicate):
    return next((row["t_seconds"] for row in rows if predicate(row)), None)


def test_a_hpa_raises_replicas_after_load_rises(story):
    _, _, rows, events = story
    load_start = first_time(rows, lambda r: r["users"] > 0)
    scaled = first_time(rows, lambda r: r["replicas_desired"] > 1)
    assert load_start is not None and scaled is not None and scaled > load_start
    assert any(e["reason"] == "SuccessfulRescale" for e in events)


def test_b_pending_replica_gets_a_new_node(node_story):
    _, _, rows, events = node_story
    pending = first_time(rows, lambda r: r["pods_pending"] > 0)
    more_nodes = first_time(rows, lambda r: r["nodes_ready"] > rows[0]["nodes_ready"])
    assert pending is not None and more_nodes is not None and more_nodes > pending
    assert any(e["reason"] == "TriggeredScaleUp" for e in events)


def test_c_at_the_node_cap_a_replica_stays_pending(node_story):
    _, _, rows, _ = node_story
    cap = max(r["nodes_ready"] for r in rows)
    assert any(
        r["nodes_ready"] == cap
        and r["replicas_desired"] > r["replicas_ready"]
        and r["pods_pending"]
        for r in rows
    )
    assert cap == 3  # the node pool's max


def test_d_replicas_return_to_min_after_load_stops(story, kube_cluster):
    _, result, rows, _ = story
    load_end = max(r["t_seconds"] for r in rows if r["users"] > 0)
    assert result.scaled_in
    assert rows[-1]["replicas_ready"] == 1 and rows[-1]["t_seconds"] > load_end
    # and the live cluster agrees: the Deployment runs, at minReplicas
    (deployment,) = wait_for_deployments_to_run(
        kube_cluster.kube_client, [SERVER_NAME], APP_NAMESPACE, timeout_sec=60
    )
    assert deployment.obj["status"]["readyReplicas"] == 1


def test_e_nodes_scale_back_down(node_story):
    _, _, rows, events = node_story
    assert rows[-1]["nodes_ready"] == rows[0]["nodes_ready"]
    assert any(e["reason"] == "ScaleDown" for e in events)


def test_f_at_the_cap_the_real_autoscaler_says_the_group_is_full(node_story):
    target, _, _, events = node_story
    if target.provider == "rehearsal" and cluster_autoscaler.binary() is None:
        pytest.skip(f"the stand-in ran; this needs the real autoscaler: {NOT_BUILT}")
    refused = [e for e in events if e["reason"] == "NotTriggerScaleUp" and e["kind"] == "Pod"]
    assert refused, "no NotTriggerScaleUp event for the replica left Pending at the node cap"
    assert any("max node group size reached" in e["message"] for e in refused)


def test_g_clients_latency_and_failures_come_from_locust(story):
    """The rehearsal's load is real Locust on the replica fleet (kind and GKE: the Locust
    chart): its p50, p95 and failures are in the timeline while users are on."""
    _, result, rows, _ = story
    loaded = [r for r in rows if (r["users"] or 0) > 0]
    measured = [r for r in loaded if r["p50_ms"] is not None and r["p95_ms"] is not None]
    assert len(measured) >= len(loaded) // 2
    assert all(0 < r["p50_ms"] <= r["p95_ms"] for r in measured)
    assert all(r["failures"] is not None for r in measured)
    assert result.summary.failures is not None


def test_the_report_names_the_node_autoscaler(story):
    target, result, _, _ = story
    lines = (result.timeline.parent / "summary.txt").read_text().splitlines()
    named = [line for line in lines if line.startswith("node autoscaler ")]
    assert named and named[0].endswith(f" {target.node_autoscaler or 'none'}")
    summary = "\n".join(lines)
    if target.provider == "rehearsal" and cluster_autoscaler.binary() is not None:
        assert f"cluster-autoscaler {cluster_autoscaler.version()}" in summary
        assert (result.timeline.parent / "cluster-autoscaler.log").is_file()


def test_watch_appends_live_samples_of_the_cluster(story, tmp_path, capsys):
    from tooling import cli

    target, _, rows, _ = story
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
