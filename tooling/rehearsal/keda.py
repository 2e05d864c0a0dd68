"""The real KEDA in the rehearsal: its operator and its metrics API server (`make setup-rehearsal`
builds both from the Go module proxy), run outside the cluster as two more control-plane
processes with the rehearsal's kubeconfig, all on loopback.

- The CRDs (ScaledObject and the rest) come from the built module (.tools/keda-crds).
- The operator watches every namespace (WATCH_NAMESPACE=""), without leader election (one
  replica) and without its certificate rotation, which keeps certificates in a Secret for pods
  to mount: `keda_certs` makes them in the cluster's folder instead. It serves the metrics
  gRPC on a free loopback port; its own /metrics and probes are off.
- The metrics API server serves external.metrics.k8s.io on a free loopback port and asks the
  operator over mutual TLS. The aggregator reaches it as it reaches kwokctl's metrics-server:
  the APIService names a Service of type ExternalName (127.0.0.1) and the local port, with the
  CA as its caBundle. (Its own /metrics listener takes no address, only a port: any free one,
  on all interfaces; KEDA v2.21.0 has no flag to bind it to loopback.) Like metrics-server
  there, it authenticates the aggregator by the client CA in kube-system's
  extension-apiserver-authentication; the rehearsal's API server sets no request-header CA,
  so its log says a few times, with growing pauses, that that bundle is missing (harmless).

Pid files and logs sit with kwokctl's own (tooling.rehearsal.components); deleting the cluster
stops both.
"""

from __future__ import annotations

import base64
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path

import yaml
from kubernetes import client

from tooling import paths
from tooling.errors import UserError
from tooling.kube import api_client, server_side_apply
from tooling.loadgen.run import free_ports
from tooling.rehearsal import components, keda_certs, prometheus
from tooling.waiting import wait_until_ready

OPERATOR = "keda-operator"
ADAPTER = "keda-adapter"
COMPONENTS = (OPERATOR, ADAPTER)
NAMESPACE = "keda"  # its cluster objects' namespace (KEDA_CLUSTER_OBJECT_NAMESPACE), as installed
SERVICE = "keda-metrics-apiserver"  # the ExternalName Service the APIService names
API_SERVICE = "v1beta1.external.metrics.k8s.io"
EXTERNAL_METRICS_API = ("external.metrics.k8s.io", "v1beta1")  # group, version
CRD_FOLDER = "keda-crds"  # beside .tools/bin
START_TIMEOUT_SECONDS = 120.0


def crd_folder() -> Path:
    return paths.tools_bin().parent / CRD_FOLDER


def missing_parts() -> list[str]:
    """What `make setup-rehearsal` did not build ([] when all is there)."""
    missing = [
        name
        for name in (prometheus.BINARY, OPERATOR, ADAPTER)
        if not os.access(paths.tools_bin() / name, os.X_OK)
    ]
    if not sorted(crd_folder().glob("*.yaml")):
        missing.append(f"KEDA's CRDs ({crd_folder()})")
    return missing


def describe() -> str:
    """The request-driven autoscaling's components, in one line."""
    versions = paths.pinned_versions()
    return (
        f"KEDA {versions['KEDA_VERSION']} (operator + metrics API server), "
        f"Prometheus {versions['PROMETHEUS_VERSION']}"
    )


def start_keda(cluster_name: str, kubeconfig: Path) -> None:
    """Installs KEDA's CRDs, starts its operator and metrics API server for the cluster (again,
    if they run: new ports), registers the external metrics APIService pointing at the local
    server and waits until it is Available."""
    missing = missing_parts()
    if missing:
        raise UserError(f"KEDA's parts missing ({', '.join(missing)}): run `make setup-rehearsal`")
    api = api_client(kubeconfig)
    try:
        install_crds(api)
        server_side_apply(
            api, [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}]
        )
        start_processes(cluster_name, kubeconfig, api)
    finally:
        api.close()


def start_processes(cluster_name: str, kubeconfig: Path, api: client.ApiClient) -> None:
    """The operator, once its gRPC port listens the metrics API server, and its APIService."""
    for component in COMPONENTS:
        components.stop(cluster_name, component)
    home = components.cluster_workdir(cluster_name) / "keda"
    certs = keda_certs.write_certificates(
        home / "certs", (f"{SERVICE}.{NAMESPACE}.svc", f"{OPERATOR}.{NAMESPACE}.svc")
    )
    grpc_port, secure_port = free_ports(2)
    environment = {
        **os.environ,
        "KUBECONFIG": str(kubeconfig),  # controller-runtime's config, out of cluster
        "WATCH_NAMESPACE": "",  # every namespace
        "POD_NAMESPACE": NAMESPACE,
        "KEDA_CLUSTER_OBJECT_NAMESPACE": NAMESPACE,  # else read from a pod's service account
    }
    components.start(cluster_name, OPERATOR, operator_command(certs, grpc_port), environment)
    wait_until(
        cluster_name, OPERATOR, lambda: listening(grpc_port), "its metrics gRPC port to listen"
    )
    adapter = adapter_command(kubeconfig, certs, grpc_port, secure_port)
    components.start(cluster_name, ADAPTER, adapter, environment)
    register_api_service(api, secure_port, (certs / "ca.crt").read_bytes())
    wait_until(
        cluster_name,
        ADAPTER,
        lambda: api_service_available(api) and external_metrics_answer(api),
        f"the APIService {API_SERVICE} to be Available and answer",
    )


def operator_command(certs: Path, grpc_port: int) -> list[str]:
    flags = {
        "leader-elect": "false",
        "metrics-service-bind-address": f"127.0.0.1:{grpc_port}",
        "metrics-bind-address": "0",  # off (its own Prometheus metrics)
        "health-probe-bind-address": "0",  # off (a pod's probes)
        "cert-dir": str(certs),
        "enable-cert-rotation": "false",
        "enable-webhook-patching": "false",
        "enable-apiservice-patching": "false",
        "ca-dir": str(certs),  # the scalers' extra CAs (none needed; the default is /custom/ca)
        "zap-encoder": "console",
    }
    return [
        str(paths.tools_bin() / OPERATOR),
        *(f"--{key}={value}" for key, value in flags.items()),
    ]


def adapter_command(kubeconfig: Path, certs: Path, grpc_port: int, secure_port: int) -> list[str]:
    flags = {
        "bind-address": "127.0.0.1",
        "secure-port": str(secure_port),
        "cert-dir": str(certs),  # also where its gRPC client reads ca.crt, tls.crt, tls.key
        "tls-cert-file": str(certs / "tls.crt"),
        "tls-private-key-file": str(certs / "tls.key"),
        "lister-kubeconfig": str(kubeconfig),
        "authentication-kubeconfig": str(kubeconfig),
        "authorization-kubeconfig": str(kubeconfig),
        "metrics-service-address": f"127.0.0.1:{grpc_port}",
        "port": "0",  # its /metrics: any free port (it binds all interfaces)
        "zap-encoder": "console",
    }
    return [str(paths.tools_bin() / ADAPTER), *(f"--{key}={value}" for key, value in flags.items())]


def install_crds(api: client.ApiClient) -> None:
    """Creates (or replaces) KEDA's CRDs and waits until the API server serves them."""
    extensions = client.ApiextensionsV1Api(api)
    names = []
    for path in sorted(crd_folder().glob("*.yaml")):
        for crd in yaml.safe_load_all(path.read_text()):
            if not crd:
                continue
            names.append(crd["metadata"]["name"])
            try:  # the replies are not read: ScaledJob's CRD is 650 kB, slow to build as models
                extensions.create_custom_resource_definition(crd, _preload_content=False)
            except client.ApiException as error:
                if error.status != 409:
                    raise
                current = extensions.read_custom_resource_definition(names[-1])
                crd["metadata"]["resourceVersion"] = current.metadata.resource_version
                extensions.replace_custom_resource_definition(
                    names[-1], crd, _preload_content=False
                )
    deadline = time.monotonic() + 60
    for name in names:
        while not established(extensions, name):
            if time.monotonic() > deadline:
                raise UserError(f"the API server did not establish KEDA's CRD {name} in 60 s")
            time.sleep(0.2)


def established(extensions: client.ApiextensionsV1Api, name: str) -> bool:
    conditions = extensions.read_custom_resource_definition_status(name).status.conditions or []
    return any(c.type == "Established" and c.status == "True" for c in conditions)


def register_api_service(api: client.ApiClient, port: int, ca_bundle: bytes) -> None:
    """The ExternalName Service to loopback and the APIService with the local port."""
    server_side_apply(
        api,
        [
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": SERVICE, "namespace": NAMESPACE},
                "spec": {"type": "ExternalName", "externalName": "127.0.0.1"},
            },
            {
                "apiVersion": "apiregistration.k8s.io/v1",
                "kind": "APIService",
                "metadata": {"name": API_SERVICE},
                "spec": {
                    "group": "external.metrics.k8s.io",
                    "version": "v1beta1",
                    "groupPriorityMinimum": 100,
                    "versionPriority": 100,
                    "service": {"name": SERVICE, "namespace": NAMESPACE, "port": port},
                    "caBundle": base64.b64encode(ca_bundle).decode(),
                },
            },
        ],
    )


def api_service_available(api: client.ApiClient) -> bool:
    service = client.ApiregistrationV1Api(api).read_api_service(API_SERVICE)
    conditions = service.status.conditions if service.status else None
    return any(c.type == "Available" and c.status == "True" for c in conditions or [])


def external_metrics_answer(api: client.ApiClient) -> bool:
    """The external metrics API answers through the API server. Available alone can be a
    stale status: on a second start the condition still holds from the stopped server's port
    until the aggregator checks again; an answer now comes from the server just started."""
    client.CustomObjectsApi(api).get_api_resources(*EXTERNAL_METRICS_API)  # error: not yet
    return True


def listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def wait_until(cluster_name: str, component: str, condition: Callable[[], bool], what: str) -> None:
    """Until `condition` holds; a UserError with the component's log if it exits or takes
    longer than START_TIMEOUT_SECONDS (both KEDA processes are stopped then)."""
    try:
        wait_until_ready(
            f"KEDA's {component}",
            what,
            condition,
            running=lambda: components.running_pid(cluster_name, component) is not None,
            log=components.log_file(cluster_name, component),
            timeout=START_TIMEOUT_SECONDS,
            period=0.5,
        )
    except UserError:
        for name in COMPONENTS:
            components.stop(cluster_name, name)
        raise
