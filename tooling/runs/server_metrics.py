"""TF Serving's own numbers, read from each ready replica's Prometheus endpoint (the chart's
monitoring config) through the API server's pod proxy — no Prometheus install needed.

Counters summed over the ready replicas: `:tensorflow:serving:request_count` (by status) and
`:tensorflow:serving:request_latency_sum|count` (microseconds). Two readings a few seconds
apart give the served requests/s and their mean latency over that time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import urllib3
from kubernetes import client
from kubernetes.client.rest import ApiException

from tooling.kube import list_items, pod_ready

PROMETHEUS_PATH = "monitoring/prometheus/metrics"
SAMPLE = re.compile(r"^(?P<name>[^{\s]+)(?:\{(?P<labels>[^}]*)\})?\s+(?P<value>\S+)$")


@dataclass(frozen=True)
class ServerCounters:
    replicas_read: int
    requests_ok: float
    requests_failed: float
    latency_sum_us: float
    latency_count: float

    def since(self, earlier: ServerCounters, seconds: float) -> tuple[float, float | None]:
        """(served requests/s, mean latency ms) between an earlier reading and this one."""
        served = max(0.0, self.requests_ok - earlier.requests_ok)
        count = self.latency_count - earlier.latency_count
        latency = (
            (self.latency_sum_us - earlier.latency_sum_us) / count / 1000 if count > 0 else None
        )
        return served / seconds if seconds > 0 else 0.0, latency


def parse_counters(text: str) -> tuple[float, float, float, float]:
    """(ok requests, failed requests, latency sum µs, latency count) from Prometheus text."""
    ok = failed = latency_sum = latency_count = 0.0
    for line in text.splitlines():
        match = SAMPLE.match(line.strip())
        if not match or line.startswith("#"):
            continue
        name, labels, value = match["name"], match["labels"] or "", float(match["value"])
        if name == ":tensorflow:serving:request_count":
            if 'status="OK"' in labels:
                ok += value
            else:
                failed += value
        elif name == ":tensorflow:serving:request_latency_sum":
            latency_sum += value
        elif name == ":tensorflow:serving:request_latency_count":
            latency_count += value
    return ok, failed, latency_sum, latency_count


def read_server_counters(
    core: client.CoreV1Api, namespace: str, selector: str, port: int = 8501
) -> ServerCounters:
    """The counters summed over the ready replicas that answered."""
    totals = [0.0, 0.0, 0.0, 0.0]
    read = 0
    for pod in list_items(core.list_namespaced_pod, namespace, label_selector=selector):
        if not pod_ready(pod):
            continue
        try:
            text = core.connect_get_namespaced_pod_proxy_with_path(
                f"{pod['metadata']['name']}:{port}", namespace, PROMETHEUS_PATH, _request_timeout=5
            )
        except (ApiException, urllib3.exceptions.HTTPError):
            continue  # a replica going away, or monitoring off
        for index, value in enumerate(parse_counters(text)):
            totals[index] += value
        read += 1
    return ServerCounters(read, *totals)
