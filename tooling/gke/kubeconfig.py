"""`cluster credentials --provider gke`: a kubeconfig entry that authenticates with
gke-gcloud-auth-plugin, as `gcloud container clusters get-credentials` writes it."""

from __future__ import annotations

from pathlib import Path

import yaml
from google.cloud import container_v1

from tooling.gke.cluster_request import GkeClusterSpec

AUTH_PLUGIN = "gke-gcloud-auth-plugin"
INSTALL_HINT = (
    "Install gke-gcloud-auth-plugin for use with kubectl by following "
    "https://cloud.google.com/kubernetes-engine/docs/how-to/cluster-access-for-kubectl#install_plugin"
)


def merged_kubeconfig(
    existing: dict | None, spec: GkeClusterSpec, cluster: container_v1.Cluster
) -> dict:
    """`existing` with this cluster's cluster/user/context entries replaced or added, and
    made the current context; other entries are kept."""
    config = dict(existing or {})
    config.setdefault("apiVersion", "v1")
    config.setdefault("kind", "Config")
    name = spec.kube_context
    entries = {
        "clusters": {
            "name": name,
            "cluster": {
                "server": f"https://{cluster.endpoint}",
                "certificate-authority-data": cluster.master_auth.cluster_ca_certificate,
            },
        },
        "users": {
            "name": name,
            "user": {
                "exec": {
                    "apiVersion": "client.authentication.k8s.io/v1beta1",
                    "command": AUTH_PLUGIN,
                    "installHint": INSTALL_HINT,
                    "provideClusterInfo": True,
                    "interactiveMode": "IfAvailable",
                }
            },
        },
        "contexts": {"name": name, "context": {"cluster": name, "user": name}},
    }
    for section, entry in entries.items():
        kept = [item for item in config.get(section) or [] if item.get("name") != name]
        config[section] = [*kept, entry]
    config["current-context"] = name
    return config


def write_credentials(path: Path, spec: GkeClusterSpec, cluster: container_v1.Cluster) -> Path:
    existing = yaml.safe_load(path.read_text()) if path.is_file() else None
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(merged_kubeconfig(existing, spec, cluster), sort_keys=False))
    path.chmod(0o600)
    return path
