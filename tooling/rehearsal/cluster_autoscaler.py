"""The real Cluster Autoscaler in the rehearsal: kubernetes-sigs/cluster-autoscaler built with its
kwok cloud provider (`make setup-rehearsal`), run as one more control-plane process.

It runs outside the cluster (KWOK_PROVIDER_MODE=local) against the rehearsal's apiserver and
reads two ConfigMaps in kube-system: `kwok-provider-config` (node groups by the
`resnet-serving.dev/node-group` label, no kwok taint) and `kwok-provider-templates` (one
e2-standard-4 template Node whose annotations carry the group's min, max and desired size).
It creates new Nodes at once; kwok's node-initialize Stage keeps each NotReady for the
profile's boot time (the template's boot annotation), as a new VM takes minutes to register.
It only counts nodes whose providerID is `kwok:<name>`, so the pool's first nodes get one too.

Its pid file and log sit with kwokctl's own (`~/.kwok/clusters/NAME/{pids,logs}`); deleting
the cluster stops it.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import yaml
from kubernetes import client

from tooling import paths
from tooling.rehearsal import components
from tooling.rehearsal.cluster import NODE_BOOT_ANNOTATION, NODE_GROUP_LABEL, node_manifest
from tooling.rehearsal.profiles import Profile

BINARY = "cluster-autoscaler"
NAMESPACE = "kube-system"  # its ConfigMaps, its status ConfigMap and its leader lease
PROVIDER_CONFIG = "kwok-provider-config"
TEMPLATES = "kwok-provider-templates"
STATUS = "cluster-autoscaler-status"  # written by each of its loops (--write-status-configmap)
GROUP_ANNOTATION = "cluster-autoscaler.kwok.nodegroup/name"
SIZE_ANNOTATION = "cluster-autoscaler.kwok.nodegroup/{}-count"


def binary() -> Path | None:
    """The built autoscaler, or None when `make setup-rehearsal` found no source for it."""
    path = paths.tools_bin() / BINARY
    return path if os.access(path, os.X_OK) else None


def version() -> str:
    """The pinned commit it was built from (12 characters)."""
    return paths.pinned_versions()["CLUSTER_AUTOSCALER_COMMIT"][:12]


def provider_id(node_name: str) -> str:
    return f"kwok:{node_name}"


def pool_node(name: str, group: str) -> dict:
    """A node of the group as the autoscaler's kwok provider makes them."""
    node = node_manifest(name, group)
    node["metadata"]["annotations"][GROUP_ANNOTATION] = group
    node["spec"]["providerID"] = provider_id(name)
    return node


def template_node(group: str, min_nodes: int, max_nodes: int, boot_seconds: float) -> dict:
    """The group's template: an e2-standard-4 Node with the group's sizes and boot time. A new
    node registers as a kubelet does, Ready=False with the not-ready taint (the node controller
    removes the taint once kwok makes it Ready), so no pod lands on a node still booting."""
    node = node_manifest(f"{group}-template", group)
    node["spec"]["taints"] = [{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}]
    node["status"]["conditions"] = [
        {"type": "Ready", "status": "False", "reason": "KubeletNotReady", "message": "booting"}
    ]
    annotations = node["metadata"]["annotations"]
    annotations[NODE_BOOT_ANNOTATION] = f"{boot_seconds:g}s"
    for size, value in (("min", min_nodes), ("max", max_nodes), ("desired", min_nodes)):
        annotations[SIZE_ANNOTATION.format(size)] = str(value)
    return node


def config_maps(group: str, min_nodes: int, max_nodes: int, boot_seconds: float) -> list[dict]:
    """The kwok provider's configuration and the group's template."""
    provider_config = {
        "apiVersion": "v1alpha1",
        "readNodesFrom": "configmap",
        "nodegroups": {"fromNodeLabelKey": NODE_GROUP_LABEL},
        "nodes": {"skipTaint": True},
        "configmap": {"name": TEMPLATES},
        "kwok": {},
    }
    # one template must come as a v1 List (the provider reads several documents, or one List)
    templates = {
        "apiVersion": "v1",
        "kind": "List",
        "items": [template_node(group, min_nodes, max_nodes, boot_seconds)],
    }
    return [
        {
            "metadata": {"name": PROVIDER_CONFIG},
            "data": {"config": yaml.safe_dump(provider_config)},
        },
        {"metadata": {"name": TEMPLATES}, "data": {"templates": yaml.safe_dump(templates)}},
    ]


def apply_config_maps(core: client.CoreV1Api, manifests: list[dict]) -> None:
    for manifest in manifests:
        try:
            core.create_namespaced_config_map(NAMESPACE, manifest)
        except client.ApiException as error:
            if error.status != 409:
                raise
            core.replace_namespaced_config_map(manifest["metadata"]["name"], NAMESPACE, manifest)


def status_written(core: client.CoreV1Api) -> bool:
    try:
        core.read_namespaced_config_map(STATUS, NAMESPACE)
    except client.ApiException as error:
        if error.status == 404:
            return False
        raise
    return True


def command(kubeconfig: Path, profile: Profile, autoscaling_profile: str) -> list[str]:
    flags = {
        "cloud-provider": "kwok",
        "kubeconfig": str(kubeconfig),
        "namespace": NAMESPACE,
        "leader-elect": "false",
        "address": "127.0.0.1:0",  # its metrics port: any free one (clusters run side by side)
        "v": "2",
        **profile.cluster_autoscaler_args(autoscaling_profile),
    }
    return [str(binary()), *(f"--{key}={value}" for key, value in flags.items())]


def start(
    cluster_name: str, kubeconfig: Path, profile: Profile, autoscaling_profile: str
) -> subprocess.Popen | None:
    """Starts the autoscaler for the cluster (None: one already runs for it)."""
    environment = {
        **os.environ,
        "KWOK_PROVIDER_MODE": "local",  # out of cluster: the kubeconfig, not a service account
        "KUBECONFIG": str(kubeconfig),
        "POD_NAMESPACE": NAMESPACE,  # where its ConfigMaps are
    }
    return components.start(
        cluster_name, BINARY, command(kubeconfig, profile, autoscaling_profile), environment
    )
