"""What real clusters are read through, against a real kube-apiserver and real processes.

On a rehearsal cluster, a kwok node with this machine's address carries hostNetwork pods, so
the apiserver's proxies reach processes on this machine as they reach pods on kind or GKE:
- LocustLoad reads a real distributed Locust run's live stats through the service proxy of
  `load-locust-master` and must see the load rise and end;
- the TF Serving counters of the local model server (the real model, TF Serving's metric
  names) are read through the pod proxy and must count the requests sent.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import namespace_in
from kubernetes import client

from tooling.kube import list_items, pod_ready
from tooling.loadgen.run import LoadRunSpec, free_port, run_load
from tooling.names import MASTER_NAME, SELECTOR
from tooling.rehearsal.cluster import missing_binaries
from tooling.runs.locust_load import LocustLoad
from tooling.runs.server_metrics import read_server_counters
from tooling.waiting import wait_for

MISSING = missing_binaries()
pytestmark = [
    pytest.mark.rehearsal,
    pytest.mark.skipif(
        bool(MISSING),
        reason=f"rehearsal binaries missing ({', '.join(MISSING)}): run `make setup-rehearsal`",
    ),
]
NAMESPACE = "live-readers"  # not restricted: its pods are hostNetwork
THIS_MACHINE = "this-machine"
PHOTO = Path(__file__).parents[1] / "tooling" / "data" / "images" / "chelsea.jpg"


@pytest.fixture(scope="module")
def core_and_batch(shared_cluster):
    _, api = shared_cluster
    core = client.CoreV1Api(api)
    add_this_machine_as_a_node(core)
    try:
        with namespace_in(api, NAMESPACE, restricted=False):
            yield core, client.BatchV1Api(api)
    finally:
        core.delete_node(THIS_MACHINE)  # the cluster is shared: leave it as it was


def add_this_machine_as_a_node(core: client.CoreV1Api) -> None:
    """A kwok node whose address is this machine's: its hostNetwork pods get that address."""
    # The apiserver advertises this machine's address in the `kubernetes` Endpoints.
    host_ip = core.read_namespaced_endpoints("kubernetes", "default").subsets[0].addresses[0].ip
    core.create_node(
        {
            "metadata": {
                "name": THIS_MACHINE,
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


def run_on_this_machine(core: client.CoreV1Api, name: str, labels: dict[str, str]) -> None:
    """A hostNetwork pod on this machine's node, standing for a process running here."""
    core.create_namespaced_pod(
        NAMESPACE,
        {
            "metadata": {"name": name, "labels": labels},
            "spec": {
                "hostNetwork": True,
                "nodeName": THIS_MACHINE,
                "containers": [{"name": "main", "image": "stands-for-a-local-process"}],
            },
        },
    )
    wait_for(
        lambda: any(
            pod_ready(pod)
            for pod in list_items(
                core.list_namespaced_pod, NAMESPACE, field_selector=f"metadata.name={name}"
            )
        ),
        60,
        f"pod {name} Ready",
    )


def expose_local_master(core: client.CoreV1Api, batch: client.BatchV1Api, web_port: int) -> None:
    """The objects the Locust chart makes, pointing at a master running on this machine."""
    labels = {"app.kubernetes.io/component": "master"}
    run_on_this_machine(core, "locust-master-on-this-machine", labels)
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


def test_tf_serving_counters_are_read_through_the_pod_proxy(core_and_batch, local_server):
    core, _ = core_and_batch
    labels = dict(item.split("=") for item in SELECTOR.split(","))
    run_on_this_machine(core, "model-server-on-this-machine", labels)
    port = int(local_server.rest.rsplit(":", 1)[1])
    before = read_server_counters(core, NAMESPACE, SELECTOR, port)
    body = json.dumps(
        {"instances": [{"b64": base64.b64encode(PHOTO.read_bytes()).decode()}]}
    ).encode()
    url = f"{local_server.rest}/v1/models/image_classifier:predict"
    for _ in range(3):
        request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as reply:
            assert reply.status == 200
    after = read_server_counters(core, NAMESPACE, SELECTOR, port)
    assert after.replicas_read == 1
    rate, latency_ms = after.since(before, seconds=1.0)
    assert rate == 3  # exactly the three requests sent, as TF Serving counted them
    assert latency_ms is not None and latency_ms > 1
