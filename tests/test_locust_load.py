"""The real-cluster load source (LocustLoad) against a real kube-apiserver and a real Locust.

A real distributed Locust run (master + worker processes) loads the local model server; its
master's web API listens on this machine. On a rehearsal cluster, a kwok node with this
machine's address carries a hostNetwork pod, so the Service `load-locust-master` has an
endpoint the apiserver can reach: LocustLoad then reads live stats through the apiserver's
service proxy exactly as on kind or GKE, and must see the load rise and end.
"""

from __future__ import annotations

import os
import threading
import time

import pytest
from kubernetes import client, config

from tooling.loadgen.run import LoadRunSpec, free_port, run_load
from tooling.rehearsal.cluster import create_cluster, delete_cluster, missing_binaries
from tooling.rehearsal.profiles import profile
from tooling.runs.locust_load import MASTER_NAME, LocustLoad
from tooling.runs.story import wait_for

MISSING = missing_binaries()
pytestmark = pytest.mark.skipif(
    bool(MISSING),
    reason=f"rehearsal binaries missing ({', '.join(MISSING)}): run `make setup-rehearsal`",
)
NAMESPACE = "default"


@pytest.fixture(scope="module")
def core_and_batch(tmp_path_factory):
    name = f"resnet-proxy-{os.getpid()}"
    try:
        cluster = create_cluster(name, tmp_path_factory.mktemp("cluster"), profile("fast"), print)
        api = config.new_client_from_config(str(cluster.kubeconfig))
        core = client.CoreV1Api(api)
        wait_for(  # pods need the namespace's default ServiceAccount, made by a controller
            lambda: bool(core.list_namespaced_service_account(NAMESPACE).items),
            60,
            "the default ServiceAccount",
        )
        yield core, client.BatchV1Api(api)
    finally:
        delete_cluster(name)


def expose_local_master(core: client.CoreV1Api, batch: client.BatchV1Api, web_port: int) -> None:
    """The objects the Locust chart makes, pointing at a master running on this machine."""
    # The apiserver advertises this machine's address in the `kubernetes` Endpoints.
    host_ip = core.read_namespaced_endpoints("kubernetes", NAMESPACE).subsets[0].addresses[0].ip
    core.create_node(
        {
            "metadata": {
                "name": "this-machine",
                "annotations": {"kwok.x-k8s.io/node": "fake"},
                "labels": {"type": "kwok"},
            },
            "status": {
                "addresses": [{"type": "InternalIP", "address": host_ip}],
                "allocatable": {"cpu": "2", "memory": "8Gi", "pods": "10"},
                "capacity": {"cpu": "2", "memory": "8Gi", "pods": "10"},
            },
        }
    )
    labels = {"app.kubernetes.io/component": "master"}
    core.create_namespaced_pod(
        NAMESPACE,
        {
            "metadata": {"name": "locust-master-on-this-machine", "labels": labels},
            "spec": {
                "hostNetwork": True,
                "nodeName": "this-machine",
                "containers": [{"name": "master", "image": "locustio/locust"}],
            },
        },
    )
    core.create_namespaced_service(
        NAMESPACE,
        {
            "metadata": {"name": MASTER_NAME},
            "spec": {
                "selector": labels,
                "ports": [{"name": "web", "port": 8089, "targetPort": web_port}],
            },
        },
    )
    batch.create_namespaced_job(  # suspended: only its status is read
        NAMESPACE,
        {
            "metadata": {"name": MASTER_NAME},
            "spec": {
                "suspend": True,
                "template": {
                    "spec": {
                        "restartPolicy": "Never",
                        "containers": [{"name": "master", "image": "locustio/locust"}],
                    }
                },
            },
        },
    )


def test_live_stats_are_read_through_the_service_proxy_until_the_run_ends(
    core_and_batch, local_server, tmp_path
):
    core, batch = core_and_batch
    web_port = free_port()
    expose_local_master(core, batch, web_port)
    shape = tmp_path / "shape.csv"
    shape.write_text("seconds,users\n0,2\n8,3\n20,0\n")
    spec = LoadRunSpec(
        host=local_server.rest,
        report_dir=tmp_path / "report",
        shape=f"file:{shape}",
        run_time="60s",
        web_host="0.0.0.0",
        web_port=web_port,
    )
    outcome = {}
    locust = threading.Thread(target=lambda: outcome.update(result=run_load(spec, say=print)))
    locust.start()
    load = LocustLoad(core, batch, NAMESPACE, run_seconds=60, period=1, say=print)
    samples = []
    deadline = time.monotonic() + 120
    while not load.finished.is_set() and time.monotonic() < deadline:
        load.poll()
        samples.append(load.latest())
        time.sleep(1)
    locust.join(timeout=60)

    assert load.seen_running and load.finished.is_set()
    loaded = [sample for sample in samples if sample.users > 0]
    assert max(sample.users for sample in loaded) == 3
    assert any(sample.p95_ms and sample.offered_rps > 0 for sample in loaded)
    assert load.latest().users == 0  # after the end, no users are reported
    assert outcome["result"].requests >= max(sample.failures or 0 for sample in samples)
    assert outcome["result"].failures == 0
