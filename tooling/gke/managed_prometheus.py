"""Google Cloud Managed Service for Prometheus (GMP) as KEDA's Prometheus on GKE.

GMP's managed collection (the cluster's monitoringConfig.managedPrometheusConfig) scrapes what a
`PodMonitoring` (monitoring.googleapis.com/v1) selects and writes it to Cloud Monitoring; PromQL
is read back through GMP's query frontend, a Deployment + Service named `frontend` on port 9090
that re-exposes the Prometheus HTTP API in the cluster, unauthenticated, reading with its pod's
identity (cloud.google.com/stackdriver/docs/managed-prometheus/query-api-ui, "Deploy the
frontend UI"; the manifest is GoogleCloudPlatform/prometheus-engine examples/frontend.yaml). GMP's
own HPA guide (…/managed-prometheus/hpa) points the autoscaler at that frontend, and so does this:
KEDA's serverAddress is http://frontend.<namespace>.svc:9090.

Two properties of GMP matter for the signal (…/managed-prometheus/hpa): data is typically
queryable 3-7 s after collection, which adds to the lag, and queries span the whole project, which
the chart's namespace and pod matchers keep to this release (the same release name and namespace
in another cluster of the project would be summed with it).
"""

from __future__ import annotations

from pathlib import Path

from google.cloud import container_v1

from tooling.errors import UserError
from tooling.gke.bucket import ksa_principal
from tooling.gke.cluster_request import GkeClusterSpec
from tooling.names import APP_NAMESPACE, REST_PORT, SERVER_NAME

# examples/frontend.yaml at prometheus-engine's newest tag that has it (v0.15.3 of the module;
# the image is Google's build of it).
FRONTEND_IMAGE = "gke.gcr.io/prometheus-engine/frontend:v0.15.3-gke.0"
FRONTEND = "frontend"
FRONTEND_PORT = 9090
FRONTEND_ACCOUNT = "gmp-frontend"  # its own KSA: the one principal granted to read metrics
VIEWER_ROLE = "roles/monitoring.viewer"
# The chart's query rates over a 30 s window, and rate() needs two samples in it: scrape every
# 15 s (GMP's examples use 30 s, which leaves a 30 s window one sample most of the time).
SCRAPE_INTERVAL = "15s"


def server_address(namespace: str = APP_NAMESPACE) -> str:
    return f"http://{FRONTEND}.{namespace}.svc:{FRONTEND_PORT}"


def pod_monitoring(selector: dict[str, str], metrics_path: str) -> dict:
    """The PodMonitoring that makes managed collection scrape the release's pods, named like the
    Deployment. `pod` and `container` are set on every target (the CRD's default metadata,
    spelled out: the chart's query selects on `pod`; `namespace` is always set)."""
    return {
        "apiVersion": "monitoring.googleapis.com/v1",
        "kind": "PodMonitoring",
        "metadata": {"name": SERVER_NAME, "namespace": APP_NAMESPACE},
        "spec": {
            "selector": {"matchLabels": dict(selector)},
            "endpoints": [
                # by name: the CRD fills the `container` label only for a named port
                {"port": "http", "path": metrics_path, "interval": SCRAPE_INTERVAL}
            ],
            "targetLabels": {"metadata": ["pod", "container"]},
        },
    }


def frontend_objects(project: str, namespace: str = APP_NAMESPACE) -> list[dict]:
    """GMP's frontend as examples/frontend.yaml has it (2 replicas, a headless Service, the
    restricted security context, so it runs in the app namespace), under its own KSA."""
    labels = {"app": FRONTEND}
    probe = {"httpGet": {"path": "/-/ready", "port": "web"}}
    container = {
        "name": FRONTEND,
        "image": FRONTEND_IMAGE,
        "args": [f"--web.listen-address=:{FRONTEND_PORT}", f"--query.project-id={project}"],
        "ports": [{"name": "web", "containerPort": FRONTEND_PORT}],
        "readinessProbe": probe,
        "livenessProbe": {"httpGet": {"path": "/-/healthy", "port": "web"}},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "privileged": False,
            "readOnlyRootFilesystem": True,
        },
    }
    meta = {"name": FRONTEND, "namespace": namespace}
    return [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": FRONTEND_ACCOUNT, "namespace": namespace},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": meta,
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "serviceAccountName": FRONTEND_ACCOUNT,
                        "automountServiceAccountToken": True,
                        "nodeSelector": {"kubernetes.io/os": "linux"},
                        "containers": [container],
                        "securityContext": {
                            "runAsGroup": 1000,
                            "runAsNonRoot": True,
                            "runAsUser": 1000,
                            "seccompProfile": {"type": "RuntimeDefault"},
                        },
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": meta,
            "spec": {
                "clusterIP": "None",
                "ports": [{"name": "web", "port": FRONTEND_PORT}],
                "selector": labels,
            },
        },
    ]


def frontend_member(project_number: int | str, project: str) -> str:
    return ksa_principal(project_number, project, APP_NAMESPACE, FRONTEND_ACCOUNT)


def grant_command(project: str, member: str) -> str:
    """The same grant by hand (tooling.gke.project_iam makes it): the frontend's KSA may read
    Cloud Monitoring."""
    return (
        f"gcloud projects add-iam-policy-binding {project} --role={VIEWER_ROLE} --member={member}"
    )


def check_collection(cluster: container_v1.Cluster, spec: GkeClusterSpec) -> None:
    """Managed collection must be on for PodMonitoring to be read (new clusters `up` creates in
    GMP mode ask for it; a reused one may not have it)."""
    if not cluster.monitoring_config.managed_prometheus_config.enabled:
        raise UserError(
            f"cluster {spec.name} has Managed Service for Prometheus' managed collection off, "
            "so nothing would scrape the release for KEDA: turn it on with `gcloud container "
            f"clusters update {spec.name} --location {spec.location} --project {spec.project} "
            "--enable-managed-prometheus`, or pass --prometheus URL"
        )


def release_scrape(objects: list[dict]) -> tuple[dict[str, str], str]:
    """The Deployment's pod selector and the metrics path its pods are annotated with."""
    for manifest in objects:
        if manifest.get("kind") == "Deployment" and manifest["metadata"]["name"] == SERVER_NAME:
            annotations = manifest["spec"]["template"]["metadata"].get("annotations") or {}
            path = annotations.get("prometheus.io/path", "/monitoring/prometheus/metrics")
            return dict(manifest["spec"]["selector"]["matchLabels"]), path
    raise UserError(f"charts/resnet-serving renders no Deployment {SERVER_NAME}")


def apply(kubeconfig: Path, objects: list[dict]) -> None:
    """Server-side apply of each object (made, or brought to this shape)."""
    from kubernetes.dynamic.exceptions import ResourceNotFoundError

    from tooling.kube import api_client, server_side_apply

    api = api_client(kubeconfig)
    try:
        for manifest in objects:
            try:
                server_side_apply(api, [manifest])
            except ResourceNotFoundError as error:
                raise UserError(
                    f"the cluster has no {manifest['kind']} ({manifest['apiVersion']}): Managed "
                    "Service for Prometheus' managed collection installs it; turn it on (`gcloud "
                    "container clusters update NAME --location LOCATION "
                    "--enable-managed-prometheus`) or pass --prometheus URL"
                ) from error
    finally:
        api.close()


def port_is_rest(objects: list[dict]) -> bool:
    """The port named `http` on the server's container is TF Serving's REST port (metrics)."""
    for manifest in objects:
        if manifest.get("kind") == "Deployment" and manifest["metadata"]["name"] == SERVER_NAME:
            for container in manifest["spec"]["template"]["spec"]["containers"]:
                for port in container.get("ports") or []:
                    if port.get("name") == "http":
                        return port.get("containerPort") == REST_PORT
    return False
