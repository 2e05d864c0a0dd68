"""Each simulated replica's TF Serving metrics, served by the fleet's front at its pod's own
path (what the rehearsal's Prometheus scrapes): a real aiohttp server on loopback, no cluster.
"""

from __future__ import annotations

import contextlib
import json
import threading
import urllib.error
import urllib.request

from tooling.fleet.endpoints import Fleet
from tooling.fleet.replicas import ModelCost, SimulatedReplica
from tooling.fleet.server import fleet_server, pod_metrics_url
from tooling.runs.server_metrics import parse_counters

NAMESPACE = "ns"
METRICS_PATH = "/monitoring/prometheus/metrics"  # the chart's default
# 40 ms of work on a core of its own: one request alone takes 40 ms
COST = ModelCost(cpu_seconds=0.04, per_request_cores=1.0)


def fleet_with(*pods: str) -> Fleet:
    fleet = Fleet(None, None, NAMESPACE, "svc", COST, node_cpu=2.0)
    for pod in pods:
        fleet.replicas[pod] = SimulatedReplica(pod, 1.0, COST, metrics_path=METRICS_PATH)
    fleet.ready = tuple(pods)
    return fleet


def predict(url: str) -> str:
    """One predict call; the pod that served it."""
    request = urllib.request.Request(
        f"{url}/v1/models/image_classifier:predict",
        data=json.dumps({"instances": [{"b64": "AA=="}]}).encode(),
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.headers["X-Simulated-Replica"]


def scrape(url: str, pod: str, namespace: str = NAMESPACE, path: str = METRICS_PATH) -> str:
    with urllib.request.urlopen(url + pod_metrics_url(namespace, pod, path), timeout=5) as answer:
        assert answer.headers["Content-Type"].startswith("text/plain")
        return answer.read().decode()


def status_of(url: str, pod: str, namespace: str = NAMESPACE, path: str = METRICS_PATH) -> int:
    try:
        scrape(url, pod, namespace, path)
    except urllib.error.HTTPError as error:
        return error.code
    return 200


def test_requests_raise_the_counters_of_the_replica_that_served_them():
    fleet = fleet_with("pod-a", "pod-b")
    with fleet_server(fleet) as url:
        assert parse_counters(scrape(url, "pod-a")) == (0, 0, 0, 0)  # up, nothing served yet
        # one after another, each alone: some while both take requests, then a few for each
        served = [predict(url) for _ in range(6)]
        for pod, more in (("pod-a", 2), ("pod-b", 3)):
            fleet.ready = (pod,)
            served += [predict(url) for _ in range(more)]
        for pod in ("pod-a", "pod-b"):
            ok, failed, latency_sum_us, latency_count = parse_counters(scrape(url, pod))
            count = served.count(pod)
            assert (ok, failed, latency_count) == (count, 0, count)
            # µs, as TF Serving's: each took its 40 ms of work, and a little more (the
            # machine is shared: up to 200 ms more)
            assert count * 40_000 <= latency_sum_us <= count * 240_000
        text = scrape(url, served[0])
    assert (
        f':tensorflow:serving:request_count{{model_name="image_classifier",status="OK"}} '
        f"{served.count(served[0])}" in text.splitlines()
    )
    buckets = [line for line in text.splitlines() if "request_latency_bucket" in line]
    assert buckets and all('API="predict",entrypoint="REST"' in line for line in buckets)
    # 40 ms requests: all in +Inf, none in the 25 ms bucket (Metrics writes only the buckets
    # that have counts)
    assert any(line.endswith(f'le="+Inf"}} {served.count(served[0])}') for line in buckets)
    assert not any('le="25000"' in line for line in buckets)


def test_a_pod_without_a_replica_has_no_metrics_and_a_dead_one_drops_its_series():
    fleet = fleet_with("pod-a")
    fleet.replicas["pod-c"] = SimulatedReplica("pod-c", 1.0, COST)  # its pod has no metrics path
    with fleet_server(fleet) as url:
        predict(url)
        assert status_of(url, "pod-a") == 200
        assert status_of(url, "pod-b") == 404  # no such pod (or not ready yet)
        assert status_of(url, "pod-a", namespace="other") == 404
        assert status_of(url, "pod-a", path="/metrics") == 404  # not where it serves them
        assert status_of(url, "pod-c") == 404  # monitoring off: TF Serving serves none
        fleet.loop.call_soon_threadsafe(fleet.kill, "pod-a")
        for _ in range(100):
            if "pod-a" not in fleet.replicas:
                break
            threading.Event().wait(0.05)
        assert status_of(url, "pod-a") == 404


def test_a_request_is_counted_when_answered_and_not_if_its_replica_dies_first():
    fleet = fleet_with("pod-a")
    fleet.replicas["pod-a"] = SimulatedReplica(
        "pod-a", 1.0, ModelCost(60.0, 1.0), metrics_path=METRICS_PATH
    )  # a minute's work
    replica = fleet.replicas["pod-a"]
    with fleet_server(fleet) as url:

        def cut_off() -> None:
            with contextlib.suppress(OSError):  # its connection is reset
                predict(url)

        client = threading.Thread(target=cut_off)
        client.start()
        for _ in range(200):
            if replica.cpu.in_flight:
                break
            threading.Event().wait(0.05)
        assert parse_counters(scrape(url, "pod-a")) == (0, 0, 0, 0)  # in flight: not yet
        fleet.loop.call_soon_threadsafe(fleet.kill, "pod-a")
        client.join(timeout=20)
        assert status_of(url, "pod-a") == 404
    assert parse_counters(replica.metrics.prometheus_text()) == (0, 0, 0, 0)
