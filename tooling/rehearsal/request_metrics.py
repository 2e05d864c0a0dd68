"""Scaling on TF Serving's request metrics in the rehearsal (the chart's KEDA mode): the real
Prometheus' scrape configuration, the query KEDA will run, and how a run names the signal
(which values ask for it: tooling.runs.scaling_signal).

Prometheus finds the model server's pods as a cluster's Prometheus does, through the API
(`kubernetes_sd_configs`, role pod, with the kubeconfig's address and credentials), and keeps
what the prometheus-community `kubernetes-pods` job keeps: pods annotated
`prometheus.io/scrape: "true"`, Running (ready or not: a real Prometheus scrapes a pod that is
not ready yet), on the annotated port. The relabelling gives each target the `namespace` and
`pod` labels the chart's query selects on, and points it at the replica fleet on loopback
(`__address__` 127.0.0.1:PORT, `__metrics_path__` /pods/<namespace>/<pod><annotated path>,
tooling.fleet.server): the pods are simulated, and their IPs are never scraped.

Scrape interval: the lab profile's is 15 s, what `up --provider gke` writes into its
PodMonitoring for GKE Managed Prometheus, so that the chart's 30 s rate window holds two scrapes
(at 30 s, the prometheus-operator's default, it often holds one: rate() is empty and KEDA reads
0); the fast profile's is 5 s, so that the window holds six scrapes and the signal follows a
step within a few of the fast HPA's 3 s syncs. A window shorter than two scrapes is refused.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path

import yaml

from tooling.errors import UserError
from tooling.fleet.server import PODS_PREFIX
from tooling.runs.scaling_signal import SIGNALS, RequestScaling

SCRAPE_SECONDS = {"fast": 5, "lab": 15}
JOB = "kubernetes-pods"
KEDA_HPA_PREFIX = "keda-hpa-"  # KEDA names the HPA it makes keda-hpa-<ScaledObject name>


def duration_seconds(duration: str) -> float:
    """Seconds of a Prometheus duration such as 30s, 1m30s or 500ms."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    parts = re.findall(r"([0-9]+)(ms|s|m|h)", duration)
    if not parts or "".join(n + u for n, u in parts) != duration:
        raise UserError(f"autoscaling.requests.window {duration!r} is not a Prometheus duration")
    return sum(int(number) * units[unit] for number, unit in parts)


def check_window(window: str, scrape_seconds: int) -> None:
    """rate() needs two samples inside its window; with fewer the query is empty, KEDA reads 0
    and the release never scales out."""
    if duration_seconds(window) < 2 * scrape_seconds:
        raise UserError(
            f"autoscaling.requests.window {window} holds fewer than two of this profile's "
            f"{scrape_seconds} s scrapes, so rate() would be empty and KEDA would read 0: set it "
            f"to at least {2 * scrape_seconds}s"
        )


def hpa_name(server_name: str) -> str:
    """The HPA KEDA makes for the ScaledObject (named like the Deployment)."""
    return f"{KEDA_HPA_PREFIX}{server_name}"


def api_server_access(kubeconfig: Path, secrets: Path) -> dict:
    """kubernetes_sd's api_server, tls_config and authorization from the kubeconfig's current
    context; certificates and keys given inline (`*-data`) are written to files in `secrets`
    (Prometheus reads files)."""
    config = yaml.safe_load(kubeconfig.read_text())
    current = config.get("current-context")
    context = next(c["context"] for c in config["contexts"] if c["name"] == current)
    cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == context["cluster"])
    user = next(
        (u.get("user") or {} for u in config.get("users") or [] if u["name"] == context["user"]),
        {},
    )

    def file_of(entry: dict, key: str, name: str) -> str | None:
        if entry.get(key):
            return str((kubeconfig.parent / entry[key]).resolve())
        if entry.get(f"{key}-data"):
            secrets.mkdir(parents=True, exist_ok=True)
            path = secrets / name
            path.write_bytes(base64.b64decode(entry[f"{key}-data"]))
            path.chmod(0o600)
            return str(path)
        return None

    tls = {
        "ca_file": file_of(cluster, "certificate-authority", "ca.crt"),
        "cert_file": file_of(user, "client-certificate", "client.crt"),
        "key_file": file_of(user, "client-key", "client.key"),
    }
    tls = {key: value for key, value in tls.items() if value}
    if cluster.get("insecure-skip-tls-verify"):
        tls["insecure_skip_verify"] = True
    access: dict = {"api_server": cluster["server"]}
    if tls:
        access["tls_config"] = tls
    if user.get("token"):
        access["authorization"] = {"type": "Bearer", "credentials": user["token"]}
    return access


def scrape_config(
    kubeconfig: Path, namespace: str, fleet_port: int, scrape_seconds: int, secrets: Path
) -> dict:
    """prometheus.yml: one job that finds the release namespace's annotated pods through the
    API and scrapes each one's metrics at the replica fleet's loopback port."""
    meta = "__meta_kubernetes_pod_"
    annotation = f"{meta}annotation_prometheus_io_"
    return {
        "global": {
            "scrape_interval": f"{scrape_seconds}s",
            "scrape_timeout": f"{max(1, min(10, scrape_seconds - 1))}s",
        },
        "scrape_configs": [
            {
                "job_name": JOB,
                "kubernetes_sd_configs": [
                    {
                        "role": "pod",
                        "namespaces": {"names": [namespace]},
                        **api_server_access(kubeconfig, secrets),
                    }
                ],
                "relabel_configs": [
                    {"source_labels": [f"{annotation}scrape"], "regex": "true", "action": "keep"},
                    {"source_labels": [f"{meta}phase"], "regex": "Running", "action": "keep"},
                    # one target per pod: the annotated port's (role pod makes one per port)
                    {
                        "source_labels": [f"{meta}container_port_number"],
                        "target_label": f"{annotation}port",
                        "action": "keepequal",
                    },
                    {
                        "source_labels": [
                            "__meta_kubernetes_namespace",
                            f"{meta}name",
                            f"{annotation}path",
                        ],
                        "regex": "(.+);(.+);(/.*)",
                        "target_label": "__metrics_path__",
                        "replacement": f"{PODS_PREFIX}/$1/$2$3",
                    },
                    {"target_label": "__address__", "replacement": f"127.0.0.1:{fleet_port}"},
                    {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
                    {"source_labels": [f"{meta}name"], "target_label": "pod"},
                ],
            }
        ],
    }


def describe(scaling: RequestScaling, components: str, scrape_seconds: int, query: str) -> str:
    """The signal and what carries it, in one line (the summary, run.json, progress lines)."""
    signal = SIGNALS.get(scaling.signal, scaling.signal)
    return (
        f"requests: {signal}, target {scaling.target_per_replica:g} per replica, over "
        f"{scaling.window}; {components}, scrape every {scrape_seconds} s; query {query}"
    )
