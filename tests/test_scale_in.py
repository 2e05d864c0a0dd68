"""What clients see during scale-in under load, measured with real Locust: the model server's
chart on a real API server (kwok pods), its Deployment scaled from 3 replicas to 1 while 30
users keep every replica busy, the replica fleet following the Service's EndpointSlices.

With the chart's default preStop sleep and grace period, the deleted replicas finish what
they have in flight: Locust counts no failure. With no preStop and a 1 s grace period they
are killed with requests in flight: Locust counts those as failed."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from conftest import namespace_in
from kubernetes import client

from tooling import calibration, releases
from tooling.fleet.endpoints import Fleet
from tooling.fleet.replicas import ModelCost
from tooling.fleet.server import fleet_server
from tooling.loadgen.run import read_aggregate
from tooling.names import APP_NAMESPACE, RELEASE, SERVER_NAME, SERVER_URL
from tooling.paths import LAB_VALUES
from tooling.rehearsal import cluster_autoscaler, locust_processes
from tooling.rehearsal.cluster import missing_binaries
from tooling.rehearsal.rehearse import REHEARSAL_MODEL_URI
from tooling.waiting import wait_for

MISSING = missing_binaries()
pytestmark = [
    pytest.mark.rehearsal,
    pytest.mark.skipif(
        bool(MISSING),
        reason=f"rehearsal binaries missing ({', '.join(MISSING)}): run `make setup-rehearsal`",
    ),
]
USERS = 30
RUN_SECONDS = 45
BUSY = 10  # requests in flight across the replicas when the scale-in starts


@pytest.fixture(scope="module")
def cluster(shared_cluster):
    core = client.CoreV1Api(shared_cluster[1])
    core.create_node(cluster_autoscaler.pool_node("pool-1", "pool"))
    try:
        with namespace_in(shared_cluster[1], APP_NAMESPACE):
            yield shared_cluster
    finally:
        core.delete_node("pool-1")  # the cluster is shared: leave it as it was


def scale_in_under_load(
    kubeconfig: Path, api: client.ApiClient, server_values: dict, results: Path
) -> dict:
    """Three busy replicas scaled to one mid-run; Locust's aggregated results."""
    values = [
        *releases.values_from_files(LAB_VALUES),
        {
            "model": {"source": {"uri": REHEARSAL_MODEL_URI, "existingClaim": ""}},
            "autoscaling": {"enabled": False},
            "replicaCount": 3,
            "podDisruptionBudget": {"enabled": False},
            "resources": {"requests": {"cpu": "250m", "memory": "1Gi"}, "limits": {"cpu": "500m"}},
            **server_values,
        },
    ]
    releases.install(kubeconfig, RELEASE, "resnet-serving", APP_NAMESPACE, *values)
    apps = client.AppsV1Api(api)
    wait_for(
        lambda: (
            (apps.read_namespaced_deployment(SERVER_NAME, APP_NAMESPACE).status.ready_replicas or 0)
            == 3
        ),
        120,
        "three ready replicas",
    )
    fleet = Fleet(
        client.CoreV1Api(api),
        client.DiscoveryV1Api(api),
        APP_NAMESPACE,
        SERVER_NAME,
        ModelCost.measured(calibration.load()),
        node_cpu=3.92,
    )
    stop = threading.Event()
    locust_values = {
        "loadtest": {
            "host": SERVER_URL,
            "headless": True,
            "shape": "",
            "users": USERS,
            "spawnRate": USERS,
            "runTime": f"{RUN_SECONDS}s",
        },
        "worker": {"replicas": 1},
    }
    with fleet_server(fleet) as url:
        threading.Thread(target=fleet.run, args=(stop,), daemon=True).start()
        wait_for(lambda: len(fleet.ready) == 3, 60, "the fleet to see three endpoints")
        commands = locust_processes.commands(locust_values, url, results)
        processes = locust_processes.start(commands, results)
        try:
            wait_for(  # in the run's first half: the rest sees the scale-in through
                lambda: (
                    sum(r.cpu.in_flight for r in fleet.replicas.values()) >= BUSY
                    and all(r.cpu.in_flight for r in fleet.replicas.values())
                ),
                RUN_SECONDS / 2,
                f"every replica busy, {BUSY} requests in flight",
                period=0.2,
            )
            busy = {pod: r.cpu.in_flight for pod, r in fleet.replicas.items()}
            apps.patch_namespaced_deployment(SERVER_NAME, APP_NAMESPACE, {"spec": {"replicas": 1}})
            processes[0].wait(timeout=RUN_SECONDS + 90)  # the master ends the run
        finally:
            stop.set()
            for process in processes:
                if process.poll() is None:
                    process.terminate()
                process.wait(timeout=30)
    releases.uninstall(kubeconfig, RELEASE, APP_NAMESPACE, wait=True)
    row = read_aggregate(results / "locust_stats.csv")
    return {
        "requests": int(row["Request Count"]),
        "failures": int(row["Failure Count"]),
        "killed": fleet.killed_requests,
        "busy_before": busy,
        "ready_after": len(fleet.ready),
    }


def test_scale_in_with_the_charts_default_grace_loses_no_request(cluster, tmp_path):
    measured = scale_in_under_load(*cluster, {}, tmp_path / "default")
    print(f"default preStop/grace: {measured}")
    assert sum(measured["busy_before"].values()) >= BUSY  # scaled in with requests in flight
    assert measured["ready_after"] == 1 and measured["requests"] > 100
    assert measured["failures"] == 0 and measured["killed"] == 0


def test_scale_in_without_grace_fails_the_requests_in_flight(cluster, tmp_path):
    server_values = {"preStopSleepSeconds": 0, "terminationGracePeriodSeconds": 1}
    measured = scale_in_under_load(*cluster, server_values, tmp_path / "no-grace")
    print(f"no preStop, 1 s grace: {measured}")
    assert measured["ready_after"] == 1 and sum(measured["busy_before"].values()) >= BUSY
    assert measured["killed"] > 0 and measured["failures"] >= measured["killed"] > 0
