"""A real node joining a control plane: containerd and the kubelet in a network namespace the
project creates, pods on a CNI bridge inside it (docs/node.md).

The node's network namespace holds everything a pod's traffic touches: a veth pair to the
host (HOST_ADDRESS on the host's end, NODE_ADDRESS the node's InternalIP), the bridge, the
pods' veths and the iptables rules the kubelet and kube-proxy write. Pods get routes to the
pod subnet, the Service range and the veth pair only: no default route, no masquerade; the
host routes the pod subnet and the Service range through the node, so nothing a pod sends
leaves this machine. Deleting the namespace removes
all of it. The kubelet sets six kernel sysctls host-wide (vm.overcommit_memory, kernel.panic
…); the node records them before and restores them on delete.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from tooling.errors import UserError
from tooling.node import containerd
from tooling.node.processes import stop_processes
from tooling.waiting import wait_until_ready

HOST_ADDRESS = "10.233.0.1"
NODE_ADDRESS = "10.233.0.2"
LINK_PREFIX = 30
LINK_SUBNET = f"10.233.0.0/{LINK_PREFIX}"  # the veth pair: the host's end and the node's
POD_SUBNET = "10.234.0.0/24"
SERVICE_SUBNET = "10.0.0.0/24"  # kube-apiserver's default --service-cluster-ip-range
CGROUP_PARENT = "resnet-serving-node"
# The sysctls the kubelet writes (protectKernelDefaults false), restored on delete.
KUBELET_SYSCTLS = (
    "vm/overcommit_memory",
    "vm/panic_on_oom",
    "kernel/panic",
    "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys",
    "kernel/keys/root_maxbytes",
)
READY_TIMEOUT_SECONDS = 120.0


@dataclass(frozen=True)
class NodeSize:
    """What the node offers this 2-core machine's pods (the rest is reserved)."""

    system_reserved_cpu: str = "500m"
    kube_reserved_cpu: str = "100m"
    system_reserved_memory: str = "1Gi"
    kube_reserved_memory: str = "256Mi"
    max_pods: int = 30


def link_names(name: str) -> tuple[str, str]:
    """The veth pair's names (host end, node end): at most 15 characters, unique per node."""
    tag = hashlib.sha256(name.encode()).hexdigest()[:6]
    return f"rsn{tag}h", f"rsn{tag}n"


def kubelet_config(
    where: containerd.ContainerdPaths, size: NodeSize, cluster_dns: list[str] | None = None
) -> dict[str, object]:
    """The kubelet's configuration for this machine: cgroups v1 allowed (KEP-5573), the cgroupfs
    driver (no systemd), its own cgroup subtree, containerd's socket, no OOM score of its own
    (CAP_SYS_RESOURCE is missing), no resolv.conf of the host's handed to pods; CLUSTER_DNS,
    the cluster DNS Service's addresses, as pods' nameservers (cluster_dns.py)."""
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "failCgroupV1": False,
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": f"/{CGROUP_PARENT}/{where.name}",
        "containerRuntimeEndpoint": f"unix://{where.socket}",
        "address": NODE_ADDRESS,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(where.run / "ca.crt")},
        },
        "authorization": {"mode": "Webhook"},
        "resolvConf": "",
        "clusterDomain": "cluster.local",
        **({"clusterDNS": cluster_dns} if cluster_dns else {}),
        "failSwapOn": False,
        "oomScoreAdj": 0,
        "maxPods": size.max_pods,
        "systemReserved": {"cpu": size.system_reserved_cpu, "memory": size.system_reserved_memory},
        "kubeReserved": {"cpu": size.kube_reserved_cpu, "memory": size.kube_reserved_memory},
        "evictionHard": {
            "memory.available": "200Mi",
            "nodefs.available": "5%",
            "imagefs.available": "5%",
        },
        "imageGCHighThresholdPercent": 95,
        "imageGCLowThresholdPercent": 90,
    }


def cni_config(where: containerd.ContainerdPaths) -> dict[str, object]:
    """The bridge network: the gateway on the bridge, routes to the pod subnet, the Services
    and the veth pair's two ends (the host's end is where the API server and metrics-server
    listen) only, no masquerade; portmap for hostPort."""
    bridge = {
        "type": "bridge",
        "bridge": "rsn0",
        "isGateway": True,
        "isDefaultGateway": False,
        "ipMasq": False,
        "hairpinMode": True,
        "ipam": {
            "type": "host-local",
            "ranges": [[{"subnet": POD_SUBNET}]],
            "routes": [{"dst": SERVICE_SUBNET}, {"dst": LINK_SUBNET}],
            "dataDir": str(where.run / "cni" / "ipam"),
        },
    }
    portmap = {"type": "portmap", "capabilities": {"portMappings": True}}
    return {"cniVersion": "1.0.0", "name": "resnet-serving", "plugins": [bridge, portmap]}


def node_kubeconfig(control_plane: dict, port: int) -> dict:
    """The control plane's kubeconfig, pointed at the host's end of the veth (the API server
    listens on every address) under the name its certificate holds."""
    config = json.loads(json.dumps(control_plane))
    for cluster in config["clusters"]:
        cluster["cluster"]["server"] = f"https://{HOST_ADDRESS}:{port}"
        cluster["cluster"]["tls-server-name"] = "localhost"
    return config


def _run(*command: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise UserError(f"{' '.join(command)} failed: {result.stderr.strip()}")


def netns_name(node: str) -> str:
    """The network namespace a node's pods, kube-proxy and CoreDNS live in."""
    return f"resnet-serving-{node}"


class RealNode:
    """A node called NAME joining the control plane of KUBECONFIG (`with RealNode(...)`)."""

    def __init__(
        self,
        name: str,
        kubeconfig: Path,
        ca_file: Path,
        size: NodeSize | None = None,
        cluster_dns: list[str] | None = None,
        image_store: str = "",
    ) -> None:
        self.name, self.kubeconfig, self.ca_file = name, kubeconfig, ca_file
        self.cluster_dns = cluster_dns
        self.size = size or NodeSize()
        self.netns_name = netns_name(name)
        self.netns = Path("/run/netns") / self.netns_name
        self.runtime = containerd.Containerd(name, netns=self.netns, store=image_store)
        self.where = self.runtime.where
        self.kubelet: subprocess.Popen[bytes] | None = None
        self._sysctls: dict[str, str] = {}

    def __enter__(self) -> RealNode:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def cgroups(self) -> list[Path]:
        """The node's cgroup subtree in every hierarchy (the kubelet's cgroupRoot; the kubelet
        makes its own in the v2 one of the hybrid layout, /sys/fs/cgroup/unified)."""
        root = containerd.CGROUP_ROOT
        return [c / CGROUP_PARENT / self.name for c in sorted(root.iterdir()) if c.is_dir()]

    @property
    def _sysctls_file(self) -> Path:
        """The host's sysctls as they were before the kubelet ran (kept past a crash)."""
        return containerd.cache_dir() / self.name / "host-sysctls.json"

    def _host_sysctls(self) -> dict[str, str]:
        """The sysctls before any kubelet of this node ran: the recorded ones if a run that
        crashed left them, else the current values, recorded."""
        if self._sysctls_file.is_file():
            return json.loads(self._sysctls_file.read_text())
        values = {key: Path("/proc/sys", key).read_text().strip() for key in KUBELET_SYSCTLS}
        self._sysctls_file.parent.mkdir(parents=True, exist_ok=True)
        self._sysctls_file.write_text(json.dumps(values))
        return values

    def _make_cgroups(self) -> None:
        for cgroup in self.cgroups():
            if cgroup.parent.parent.name == "unified":
                continue  # only the v1 controllers must exist before the kubelet starts
            cgroup.mkdir(parents=True, exist_ok=True)
            if cgroup.parent.parent.name == "cpuset":  # v1 cpuset starts empty
                for level in (cgroup.parent, cgroup):
                    for key in ("cpuset.cpus", "cpuset.mems"):
                        value = (level.parent / key).read_text()
                        (level / key).write_text(value)

    def _make_network(self) -> None:
        host, node = link_names(self.name)
        _run("ip", "netns", "add", self.netns_name)
        _run(
            "ip",
            "link",
            "add",
            host,
            "type",
            "veth",
            "peer",
            "name",
            node,
            "netns",
            self.netns_name,
        )
        _run("ip", "addr", "add", f"{HOST_ADDRESS}/{LINK_PREFIX}", "dev", host)
        _run("ip", "link", "set", host, "up")
        inside = ("ip", "-n", self.netns_name)
        _run(*inside, "addr", "add", f"{NODE_ADDRESS}/{LINK_PREFIX}", "dev", node)
        _run(*inside, "link", "set", node, "up")
        _run(*inside, "link", "set", "lo", "up")
        # Forwarding between the pods' veths on the bridge and to the node's own address.
        _run("ip", "netns", "exec", self.netns_name, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        # The host reaches pods and Services through the node, as a control plane does (the
        # API server's service proxy, metrics-server, tests); the routes go with the veth.
        for subnet in (POD_SUBNET, SERVICE_SUBNET):
            _run("ip", "route", "add", subnet, "via", NODE_ADDRESS, "dev", host)

    def start(self) -> None:
        """Network, cgroups, containerd with the pause image, then the kubelet (started, not
        yet registered: `wait_ready`)."""
        if not (self.runtime.tools / "kubelet").exists():
            raise UserError(
                f"kubelet is not installed in {self.runtime.tools}: run `make setup-node`"
            )
        self._sysctls = self._host_sysctls()
        self._make_network()
        self._make_cgroups()
        self.where.cni_conf_dir.mkdir(parents=True, exist_ok=True)
        conflist = self.where.cni_conf_dir / "10-resnet-serving.conflist"
        conflist.write_text(json.dumps(cni_config(self.where), indent=2))
        self.runtime.start()
        self.runtime.import_image(Path(self.runtime.tools.parent / "images" / "pause.tar"))
        control_plane = yaml.safe_load(self.kubeconfig.read_text())
        port = int(control_plane["clusters"][0]["cluster"]["server"].rsplit(":", 1)[1])
        kubelet_kubeconfig = self.where.run / "kubelet.kubeconfig"
        kubelet_kubeconfig.write_text(yaml.safe_dump(node_kubeconfig(control_plane, port)))
        shutil.copyfile(self.ca_file, self.where.run / "ca.crt")
        config = self.where.run / "kubelet.yaml"
        config.write_text(yaml.safe_dump(kubelet_config(self.where, self.size, self.cluster_dns)))
        root_dir = self.where.run / "kubelet"
        with (self.where.run / "kubelet.log").open("ab") as log:
            self.kubelet = subprocess.Popen(
                [
                    *containerd.in_netns(self.netns),
                    str(self.runtime.tools / "kubelet"),
                    f"--config={config}",
                    f"--kubeconfig={kubelet_kubeconfig}",
                    f"--root-dir={root_dir}",
                    f"--cert-dir={root_dir / 'pki'}",
                    f"--node-ip={NODE_ADDRESS}",
                    f"--hostname-override={self.name}",
                    "--v=2",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_ready(
        self, is_ready: Callable[[], bool], timeout: float = READY_TIMEOUT_SECONDS
    ) -> None:
        """Waits for IS_READY (the caller's API check of the Node) while the kubelet runs."""
        wait_until_ready(
            "the kubelet",
            f"node {self.name} to be Ready",
            is_ready,
            running=lambda: self.kubelet is not None and self.kubelet.poll() is None,
            log=self.where.run / "kubelet.log",
            timeout=timeout,
            period=1,
        )

    def stop(self) -> None:
        """The kubelet, then containerd and its containers, the network namespace, the cgroups,
        the sysctls as they were, the run folder."""
        if self.kubelet is not None and self.kubelet.poll() is None:
            self.kubelet.terminate()
            try:
                self.kubelet.wait(20)
            except subprocess.TimeoutExpired:
                self.kubelet.kill()
                self.kubelet.wait(5)
        elif self.kubelet is None:  # started by another process
            stop_processes(self.runtime.pids_of("kubelet"))
        self.kubelet = None
        self.runtime.stop()
        if self.netns.exists():  # anything still in it (a killed run's services)
            listed = subprocess.run(
                ["ip", "netns", "pids", self.netns_name], capture_output=True, text=True
            )
            stop_processes([int(pid) for pid in listed.stdout.split()])
            subprocess.run(
                ["ip", "netns", "del", self.netns_name], check=False, capture_output=True
            )
        # The kernel frees a deleted namespace, and the veth end in it, in a work queue: the
        # host's end can outlive `ip netns del` by seconds. Deleting it removes both ends now.
        host_end, _ = link_names(self.name)
        subprocess.run(["ip", "link", "del", host_end], check=False, capture_output=True)
        for cgroup in self.cgroups():
            for folder in sorted(cgroup.rglob("*"), key=lambda p: len(p.parts), reverse=True):
                if folder.is_dir():
                    with contextlib.suppress(OSError):
                        folder.rmdir()
            for level in (cgroup, cgroup.parent):
                with contextlib.suppress(OSError):
                    level.rmdir()
        if not self._sysctls and self._sysctls_file.is_file():
            self._sysctls = json.loads(self._sysctls_file.read_text())
        for key, value in self._sysctls.items():
            with contextlib.suppress(OSError):
                Path("/proc/sys", key).write_text(value)
        self._sysctls_file.unlink(missing_ok=True)

    def leftovers(self) -> list[str]:
        """What a deleted node must not leave: containerd's leftovers, its links and namespace,
        its cgroups, changed sysctls."""
        found = self.runtime.leftovers()  # with the kubelet's process, if any
        links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
        found += [
            f"link {n}" for n in link_names(self.name) if f" {n}@" in links or f" {n}:" in links
        ]
        found += [f"network namespace {self.netns}"] if self.netns.exists() else []
        found += [f"cgroup {c}" for c in self.cgroups() if c.exists()]
        for key, value in self._sysctls.items():
            now = Path("/proc/sys", key).read_text().strip()
            if now != value:
                found.append(f"sysctl {key}={now} (was {value})")
        return found
