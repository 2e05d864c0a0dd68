"""The real Prometheus and the real KEDA as rehearsal cluster processes (issue 18): Prometheus
scrapes a gauge this test serves and sets; KEDA's operator turns a ScaledObject with a
prometheus trigger into its HPA; its metrics API server answers the external metric through
the API server (the aggregator, to a local process); raising the gauge raises the
Deployment's replicas; deleting the cluster stops all three processes. And, without a
cluster: setup's fallback when the module proxy serves neither module, the cached builds
linked without one, and the certificates KEDA's processes share."""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psutil
import pytest
from conftest import bare_rehearsal_cluster
from kubernetes import client

from tooling import paths
from tooling.quantities import quantity
from tooling.rehearsal import components, keda, keda_certs, prometheus
from tooling.rehearsal.cluster import missing_binaries, node_manifest

SCRIPT = paths.REPO_ROOT / "hack" / "install-request-autoscaling.sh"
NAMESPACE = "default"
APP = "keda-app"
TARGET = 4  # the trigger's threshold per replica (AverageValue)
METRIC = "rehearsal_test_queue_depth"


def missing_for_the_cluster_tests() -> list[str]:
    return [*missing_binaries(), *keda.missing_parts()]


needs_the_builds = pytest.mark.skipif(
    bool(missing_for_the_cluster_tests()),
    reason=(
        f"rehearsal binaries missing ({', '.join(missing_for_the_cluster_tests())}): "
        "run `make setup-rehearsal`"
    ),
)


# Setup's fallback and cache, with no module proxy.


def install(tmp_path: Path) -> subprocess.CompletedProcess:
    """The script with its own cache and tools folders and no module proxy (an empty module
    cache, GOPROXY=off): only cached builds can be linked."""
    env = {
        **os.environ,
        "GOPROXY": "off",
        "GOMODCACHE": str(tmp_path / "gomodcache"),
        "RESNET_SERVING_CACHE": str(tmp_path / "cache"),
        "RESNET_SERVING_TOOLS": str(tmp_path / "tools" / "bin"),
    }
    return subprocess.run(
        ["bash", str(SCRIPT)], env=env, capture_output=True, text=True, check=True, timeout=120
    )


def test_without_the_modules_setup_says_in_one_line_that_keda_mode_is_off(tmp_path):
    result = install(tmp_path)
    lines = [line for line in result.stdout.splitlines() if "request autoscaling" in line]
    assert len(lines) == 1, result.stdout
    versions = paths.pinned_versions()
    assert f"github.com/kedacore/keda/v2@{versions['KEDA_VERSION']}" in lines[0]
    assert f"github.com/prometheus/prometheus@{versions['PROMETHEUS_VERSION']}" in lines[0]
    assert "without KEDA mode" in lines[0] and "make setup-rehearsal" in lines[0]
    assert not list((tmp_path / "tools" / "bin").iterdir())
    assert not (tmp_path / "tools" / "keda-crds").exists()


def test_cached_builds_are_linked_without_their_source(tmp_path, monkeypatch):
    versions = paths.pinned_versions()
    tools = tmp_path / "cache" / "tools"
    built = {
        "prometheus": tools / f"prometheus-{versions['PROMETHEUS_VERSION']}" / "prometheus",
        "keda-operator": tools / f"keda-operator-{versions['KEDA_VERSION']}" / "keda-operator",
        "keda-adapter": tools / f"keda-operator-{versions['KEDA_VERSION']}" / "keda-adapter",
    }
    for binary in built.values():
        binary.parent.mkdir(parents=True, exist_ok=True)
        binary.write_text("#!/bin/sh\n")
        binary.chmod(0o755)
    crds = built["keda-operator"].parent / "crds"
    crds.mkdir()
    (crds / "keda.sh_scaledobjects.yaml").write_text("{}\n")
    result = install(tmp_path)
    assert "request autoscaling" not in result.stdout
    bin_dir = tmp_path / "tools" / "bin"
    for name, binary in built.items():
        assert (bin_dir / name).resolve() == binary
    assert (tmp_path / "tools" / "keda-crds").resolve() == crds
    monkeypatch.setenv("RESNET_SERVING_TOOLS", str(bin_dir))
    assert keda.missing_parts() == []


def test_missing_parts_name_what_setup_did_not_build(tmp_path, monkeypatch):
    monkeypatch.setenv("RESNET_SERVING_TOOLS", str(tmp_path / "bin"))
    missing = keda.missing_parts()
    assert missing[:3] == ["prometheus", "keda-operator", "keda-adapter"]
    assert "CRDs" in missing[3]
    assert prometheus.binary() is None
    versions = paths.pinned_versions()
    assert keda.describe() == (
        f"KEDA {versions['KEDA_VERSION']} (operator + metrics API server), "
        f"Prometheus {versions['PROMETHEUS_VERSION']}"
    )


def test_the_certificates_serve_and_authenticate_both_ends(tmp_path):
    """One leaf the CA signed, for server and client auth, named for loopback and the
    Service the aggregator checks; its key readable by its owner only."""
    folder = keda_certs.write_certificates(tmp_path / "certs", ("svc.ns.svc",))
    ca, leaf = folder / "ca.crt", folder / "tls.crt"
    for purpose in ("sslserver", "sslclient"):
        verified = subprocess.run(
            ["openssl", "verify", "-purpose", purpose, "-CAfile", str(ca), str(leaf)],
            capture_output=True,
            text=True,
        )
        assert verified.returncode == 0, verified.stdout + verified.stderr
    text = subprocess.run(
        ["openssl", "x509", "-in", str(leaf), "-noout", "-ext", "subjectAltName"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "IP Address:127.0.0.1" in text and "DNS:svc.ns.svc" in text
    assert (folder / "tls.key").stat().st_mode & 0o077 == 0
    before = leaf.read_bytes()
    keda_certs.write_certificates(folder, ("svc.ns.svc",))  # kept when all three are there
    assert leaf.read_bytes() == before


# The processes on a rehearsal cluster.


class Gauge:
    """A /metrics endpoint on loopback exporting one gauge the test sets."""

    def __init__(self) -> None:
        self.value = 0.0
        gauge = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = f"# TYPE {METRIC} gauge\n{METRIC} {gauge.value:g}\n".encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def wait_until(condition, timeout: float, what: str, period: float = 0.5) -> object:
    """The condition's first truthy value; fails the test after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(client.ApiException):
            value = condition()
            if value:
                return value
        assert time.monotonic() < deadline, f"no {what} after {timeout:.0f} s"
        time.sleep(period)


def deployment() -> dict:
    labels = {"app": APP}
    return {
        "metadata": {"name": APP, "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {"name": "app", "image": "app", "resources": {"requests": {"cpu": "100m"}}}
                    ]
                },
            },
        },
    }


def scaled_object(prometheus_url: str) -> dict:
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": APP},
        "spec": {
            "scaleTargetRef": {"name": APP},
            "pollingInterval": 1,
            "cooldownPeriod": 30,
            "minReplicaCount": 1,
            "maxReplicaCount": 10,
            "advanced": {
                "horizontalPodAutoscalerConfig": {
                    "behavior": {
                        "scaleUp": {
                            "stabilizationWindowSeconds": 0,
                            "policies": [{"type": "Percent", "value": 900, "periodSeconds": 1}],
                        }
                    }
                }
            },
            "triggers": [
                {
                    "type": "prometheus",
                    "metricType": "AverageValue",
                    "metadata": {
                        "serverAddress": prometheus_url,
                        "query": f"sum({METRIC})",
                        "threshold": str(TARGET),
                    },
                }
            ],
        },
    }


def processes_of(cluster_name: str) -> dict[str, psutil.Process]:
    found = {}
    for component in (prometheus.COMPONENT, *keda.COMPONENTS):
        pid = components.running_pid(cluster_name, component)
        if pid is not None:
            found[component] = psutil.Process(pid)
    return found


@pytest.fixture(scope="module")
def keda_cluster(tmp_path_factory) -> Iterator[tuple[str, client.ApiClient, str, Gauge, Path]]:
    """A rehearsal control plane with one kwok node, Prometheus scraping the test's gauge every
    second, and KEDA; yields the cluster's name, an API client, Prometheus' URL, the gauge and
    the kubeconfig."""
    name = f"keda-{os.getpid()}"
    gauge = Gauge()
    try:
        with bare_rehearsal_cluster(name, tmp_path_factory.mktemp("keda-cluster"), NAMESPACE) as (
            kubeconfig,
            api,
        ):
            client.CoreV1Api(api).create_node(node_manifest(f"{name}-node", "pool"))
            url = prometheus.start_prometheus(
                name,
                {
                    "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                    "scrape_configs": [
                        {"job_name": "gauge", "static_configs": [{"targets": [gauge.address]}]}
                    ],
                },
            )
            keda.start_keda(name, kubeconfig)
            yield name, api, url, gauge, kubeconfig
    finally:
        gauge.close()


@pytest.mark.slow
@pytest.mark.rehearsal
@needs_the_builds
def test_keda_scales_a_deployment_on_a_prometheus_query_through_the_external_metrics_api(
    keda_cluster,
):
    _, api, url, gauge, _ = keda_cluster
    gauge.value = TARGET  # one replica's worth
    wait_until(lambda: prometheus.instant_query(url, f"sum({METRIC})") == TARGET, 30, "scrape")
    client.AppsV1Api(api).create_namespaced_deployment(NAMESPACE, deployment())
    custom = client.CustomObjectsApi(api)
    custom.create_namespaced_custom_object(
        "keda.sh", "v1alpha1", NAMESPACE, "scaledobjects", scaled_object(url)
    )
    autoscaling = client.AutoscalingV2Api(api)
    hpa = wait_until(
        lambda: autoscaling.read_namespaced_horizontal_pod_autoscaler(f"keda-hpa-{APP}", NAMESPACE),
        60,
        f"HPA keda-hpa-{APP} made by KEDA",
    )
    external = hpa.spec.metrics[0].external
    metric_name = external.metric.name
    assert external.target.type == "AverageValue" and quantity(external.target.average_value) == 4
    status = custom.get_namespaced_custom_object(
        "keda.sh", "v1alpha1", NAMESPACE, "scaledobjects", APP
    )
    assert status["status"]["externalMetricNames"] == [metric_name]

    def served_value() -> float | None:
        """The metric as the HPA reads it: through the API server, from KEDA's server."""
        listed = custom.list_namespaced_custom_object(
            "external.metrics.k8s.io",
            "v1beta1",
            NAMESPACE,
            metric_name,
            label_selector=f"scaledobject.keda.sh/name={APP}",
        )
        items = listed["items"]
        return quantity(items[0]["value"]) if items else None

    wait_until(lambda: served_value() == TARGET, 30, "the external metric")
    apps = client.AppsV1Api(api)
    gauge.value = 5 * TARGET  # five replicas' worth
    wait_until(lambda: served_value() == 5 * TARGET, 30, "the raised external metric")
    wait_until(
        lambda: apps.read_namespaced_deployment(APP, NAMESPACE).spec.replicas == 5,
        60,
        "5 replicas after the query's value went from 4 to 20 (target 4 per replica)",
    )

    def hpa_reads() -> float:
        hpa = autoscaling.read_namespaced_horizontal_pod_autoscaler(f"keda-hpa-{APP}", NAMESPACE)
        return quantity(hpa.status.current_metrics[0].external.current.average_value)

    wait_until(lambda: hpa_reads() == TARGET, 30, "the HPA reading 20 / 5 replicas = 4")


@pytest.mark.slow
@pytest.mark.rehearsal
@needs_the_builds
def test_a_second_start_returns_once_the_new_server_answers(keda_cluster):
    """Re-run on the same cluster, KEDA's servers restart on new ports while the APIService
    still says Available from the old one; start_keda waits for an answer from the new one."""
    name, api, _, _, kubeconfig = keda_cluster
    old_pid = components.running_pid(name, keda.ADAPTER)
    keda.start_keda(name, kubeconfig)
    assert components.running_pid(name, keda.ADAPTER) not in (None, old_pid)
    # at once: a 503 from the aggregator (the stopped server's port) would raise
    resources = client.CustomObjectsApi(api).get_api_resources(*keda.EXTERNAL_METRICS_API)
    assert resources.group_version == "external.metrics.k8s.io/v1beta1"


@pytest.mark.slow
@pytest.mark.rehearsal
@needs_the_builds
def test_deleting_the_cluster_stops_prometheus_and_keda(keda_cluster):
    from tooling.rehearsal.cluster import delete_cluster

    name = keda_cluster[0]
    running = processes_of(name)
    assert set(running) == {"prometheus", "keda-operator", "keda-adapter"}
    delete_cluster(name)
    still = [c for c, p in running.items() if p.is_running() and p.status() != "zombie"]
    assert not still, f"still running after the cluster was deleted: {still}"
