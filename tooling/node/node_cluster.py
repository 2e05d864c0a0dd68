"""A cluster whose pods run as containers: the rehearsal's real control plane (kwok's
controller kept to kwok's own nodes) and one real node on this machine — containerd, the
kubelet, CNI, kube-proxy, cluster DNS (CoreDNS) and the model store the charts' node values
fetch from — with the local images imported (docs/node.md).

`NodeCluster` starts and stops all of it in one process (tooling.node.daemon keeps it running
for `cluster create --provider node`); `stop` also cleans up after a process that was killed.
"""

from __future__ import annotations

import json
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

from kubernetes import client, utils
from kubernetes.client.rest import ApiException

from tooling import paths
from tooling.console import Say
from tooling.errors import UserError
from tooling.kube import api_client
from tooling.node import cluster_dns, kube_proxy, model_export, model_store
from tooling.node.node import HOST_ADDRESS, RealNode
from tooling.node.oci_image import qualified
from tooling.rehearsal import components
from tooling.rehearsal.cluster import create_cluster, delete_cluster
from tooling.rehearsal.profiles import PROFILES, Profile

# The local images (hack/images), in the order a chart's pods first need them.
IMAGES = ("pause", "fetcher", "tfserving-stand-in", "locust")
# Every node cluster's containerd keeps its images in one folder of the cache (one node cluster
# runs at a time): an image is imported once per build, whatever the cluster's name.
IMAGE_STORE = "node-cluster"


def control_plane_args(name: str) -> dict[str, dict[str, str]]:
    """The rehearsal's control plane, fitted to a real node: the `kubernetes` Service's
    endpoint is the host's end of the node's veth, which pods reach; the API server reaches
    the kubelet (logs, exec, port-forward) at its InternalIP (its name does not resolve on
    the host) with the admin certificate, which the kubelet's client CA signed; the HPA leaves
    out a starting replica's warm-up CPU; kwok's
    controller (metrics-server's dependency in kwokctl) manages only kwok's own nodes: with
    --manage-all-nodes it marks the real node Ready and fakes its pods' status."""
    pki = components.cluster_workdir(name) / "pki"
    return {
        "kube-apiserver": {
            "advertise-address": HOST_ADDRESS,
            "kubelet-preferred-address-types": "InternalIP,Hostname",
            "kubelet-client-certificate": str(pki / "admin.crt"),
            "kubelet-client-key": str(pki / "admin.key"),
        },
        # A real replica takes ~20 s to start and burns CPU loading and warming up the model:
        # the HPA leaves out the samples around its readiness for this long after its start
        # (the fast profile's 5 s is for kwok's pods, which burn none; GKE's default is 5 min).
        "kube-controller-manager": {
            "horizontal-pod-autoscaler-cpu-initialization-period": "90s",
        },
        "kwok-controller": {
            "manage-all-nodes": "false",
            "manage-nodes-with-annotation-selector": "kwok.x-k8s.io/node=fake",
        },
    }


@dataclass(frozen=True)
class NodeClusterSpec:
    """A node cluster: its name, where its kubeconfig goes and its controllers' timings."""

    kubeconfig: Path
    name: str = "resnet-node"
    profile: Profile = PROFILES["fast"]


def images_dir() -> Path:
    return paths.tools_bin().parent / "images"


NODE_BINARIES = (
    "containerd",
    "containerd-shim-runc-v2",
    "ctr",
    "runc",
    "kubelet",
    "kube-proxy",
    "coredns",
)
CNI_PLUGINS = ("bridge", "host-local", "loopback", "portmap")


def missing_node_parts() -> list[str]:
    """What `make setup-node` has not installed yet: binaries, CNI plugins, local images."""
    tools = paths.tools_bin()
    missing = [name for name in NODE_BINARIES if not (tools / name).is_file()]
    missing += [f"cni {n}" for n in CNI_PLUGINS if not (tools.parent / "cni-bin" / n).is_file()]
    missing += [f"image {n}" for n in IMAGES if not (images_dir() / f"{n}.tar").is_file()]
    return missing


def archive_digest(archive: Path) -> str:
    """The manifest digest an image archive's index names (what containerd records)."""
    with tarfile.open(archive) as packed:
        member = packed.extractfile("index.json")
        if member is None:
            raise UserError(f"{archive} has no index.json: rebuild it with `make setup-node`")
        return json.load(member)["manifests"][0]["digest"]


def create_objects(api: client.ApiClient, objects: list[dict]) -> None:
    """Creates each object, leaving one that already exists as it is."""
    for manifest in objects:
        try:
            utils.create_from_dict(api, manifest)
        except utils.FailToCreateError as failure:
            if any(e.status != 409 for e in failure.api_exceptions):
                raise


class NodeCluster:
    """The control plane, then the node and its services; `stop` in the reverse order."""

    def __init__(self, spec: NodeClusterSpec, say: Say = print) -> None:
        self.spec, self.say = spec, say
        self.pki = components.cluster_workdir(spec.name) / "pki"
        self.node = RealNode(
            spec.name,
            spec.kubeconfig,
            self.pki / "ca.crt",
            cluster_dns=[cluster_dns.CLUSTER_DNS_IP],
            image_store=IMAGE_STORE,
        )
        run, netns, tools = self.node.where.run, self.node.netns, paths.tools_bin()
        node_kubeconfig = run / "kubelet.kubeconfig"
        self.kube_proxy = kube_proxy.KubeProxy(spec.name, netns, node_kubeconfig, run, tools)
        self.dns = cluster_dns.ClusterDns(spec.name, netns, node_kubeconfig, run, tools)
        # the tarball is known once it is exported (`start`); stopping needs none
        self.store = model_store.ModelStore(
            spec.name,
            netns,
            self.pki / "ca.crt",
            self.pki / "ca.key",
            Path("/dev/null"),
            run / "model-store",
        )

    def start(self) -> None:
        """Everything up, or everything stopped again and the error raised."""
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        spec, say = self.spec, self.say
        missing = missing_node_parts()
        if missing:
            parts = ", ".join(missing)
            raise UserError(f"the node's parts missing ({parts}): run `make setup-node`")
        tarball = model_export.model_tarball(progress=say)
        create_cluster(
            spec.name,
            spec.kubeconfig,
            spec.profile,
            say,
            component_args=control_plane_args(spec.name),
        )
        api = api_client(spec.kubeconfig)
        core = client.CoreV1Api(api)
        say(f"node: starting containerd and the kubelet of {spec.name} …")
        self.node.start()
        self.node.wait_ready(lambda: node_ready(core, spec.name))
        self.import_images()
        self.kube_proxy.start()
        self.kube_proxy.wait_ready()
        create_objects(api, cluster_dns.kube_dns_objects())
        self.dns.start()
        self.dns.wait_ready()
        create_objects(api, model_store.model_store_objects())
        self.store.tarball = tarball
        self.store.start()
        say(
            f"node: ✓ {spec.name}: node Ready (containerd, kubelet, kube-proxy, CoreDNS), "
            f"model store at {model_store.MODEL_STORE_URI}"
        )

    def import_images(self) -> None:
        """Imports each local image unless containerd already holds that very manifest."""
        held = self.node.runtime.ctr("images", "list").stdout
        for name in IMAGES:
            archive = images_dir() / f"{name}.tar"
            reference = qualified((images_dir() / f"{name}.ref").read_text().strip())
            digest = archive_digest(archive)
            if any(
                line.split()[:1] == [reference] and digest in line for line in held.splitlines()
            ):
                continue
            started = time.monotonic()
            self.node.runtime.import_image(archive)
            self.say(f"node: imported {reference} ({time.monotonic() - started:.0f} s)")

    def stop(self) -> None:
        """The node's services, the node, then the control plane; nothing left behind."""
        for service in (self.store, self.dns, self.kube_proxy):
            service.stop()
        self.node.stop()
        delete_cluster(self.spec.name)

    def leftovers(self) -> list[str]:
        """What a deleted cluster must not leave: its services' and its node's leftovers."""
        found: list[str] = []
        for service in (self.store, self.dns, self.kube_proxy):
            found += service.leftovers()
        return found + self.node.leftovers()


def node_ready(core: client.CoreV1Api, name: str) -> bool:
    try:
        nodes = core.list_node(field_selector=f"metadata.name={name}", _request_timeout=10).items
    except (ApiException, OSError):
        return False
    conditions = (nodes[0].status.conditions or []) if nodes else []
    return any(c.type == "Ready" and c.status == "True" for c in conditions)
