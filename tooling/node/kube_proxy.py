"""kube-proxy on the real node: the built kube-proxy in iptables mode inside the node's network
namespace (`nsenter --net` only, as containerd and the kubelet), its rules written there and
gone with the namespace.

What it must not touch outside the namespace (read in kube-proxy v1.36's source):
- `conntrack.maxPerCore: 0` (and `min: 0`): it sets no `nf_conntrack_max`, and so never writes
  `/sys/module/nf_conntrack/parameters/hashsize`, which is host-wide;
- the conntrack timeouts at `0s`: it writes no `net/netfilter/nf_conntrack_*` sysctl;
- `nodePortAddresses` the node's address only and `localhostNodePorts: false`: it does not set
  `net/ipv4/conf/all/route_localnet` (per namespace anyway);
- `oomScoreAdj: 0`: its default -999 needs CAP_SYS_RESOURCE, which root lacks here.

`HOST_SETTINGS` lists those host values; `KubeProxy` records them at start, writes back any
that changed on stop, and `leftovers` names any still changed. `net.bridge.bridge-nf-call-
iptables=1` is set inside the namespace (per network namespace on this kernel, 6.18): replies
from a pod to a pod that reached it through a ClusterIP on the same bridge then pass netfilter
and are un-NATed. No masquerade to the outside: `masqueradeAll: false` and `clusterCIDR` the
pod subnet, so only traffic from outside the pods to a Service is masqueraded, and the node has
no route off this machine.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

from tooling.errors import UserError
from tooling.node.containerd import in_netns
from tooling.node.node import NODE_ADDRESS, POD_SUBNET
from tooling.node.processes import processes_naming, stop_processes
from tooling.waiting import wait_until_ready

HEALTHZ_ADDRESS = "127.0.0.1:10256"  # inside the node's namespace
METRICS_ADDRESS = "127.0.0.1:10249"
# Host-wide files kube-proxy can write: its conntrack sizing (nf_conntrack_max, hashsize), the
# timeouts, route_localnet, and the bridge's netfilter switch, as the host has them.
HOST_SETTINGS = (
    "/proc/sys/net/netfilter/nf_conntrack_max",
    "/sys/module/nf_conntrack/parameters/hashsize",
    "/proc/sys/net/netfilter/nf_conntrack_tcp_timeout_established",
    "/proc/sys/net/netfilter/nf_conntrack_tcp_timeout_close_wait",
    "/proc/sys/net/netfilter/nf_conntrack_tcp_be_liberal",
    "/proc/sys/net/netfilter/nf_conntrack_udp_timeout",
    "/proc/sys/net/netfilter/nf_conntrack_udp_timeout_stream",
    "/proc/sys/net/ipv4/conf/all/route_localnet",
    "/proc/sys/net/bridge/bridge-nf-call-iptables",
)
START_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 10.0


def read_settings(files: tuple[str, ...] = HOST_SETTINGS) -> dict[str, str]:
    """The current values of FILES that exist (read in this process's, the host's, namespace)."""
    values = {}
    for file in files:
        with contextlib.suppress(OSError):
            values[file] = Path(file).read_text().strip()
    return values


class NetnsProcess:
    """One long-running command in a network namespace (`nsenter --net`, so the host's mounts),
    its output appended to LOG, stopped with SIGTERM and then SIGKILL. MARK, a path on its
    command line, finds the copies another process started: `stop` ends them too, and
    `leftovers` names any still there."""

    def __init__(self, label: str, netns: Path, command: list[str], log: Path, mark: str) -> None:
        self.label, self.netns, self.command, self.log, self.mark = label, netns, command, log, mark
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        if not self.netns.exists():
            raise UserError(f"{self.label}: no network namespace {self.netns} (start the node)")
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [*in_netns(self.netns), *self.command],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_ready(self, what: str, ready: Callable[[], bool], timeout: float) -> None:
        """Until READY holds while the process runs (tooling.waiting.wait_until_ready)."""
        wait_until_ready(
            self.label, what, ready, running=self.running, log=self.log, timeout=timeout, period=0.5
        )

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        self.process = None
        # one another process started (cluster create and cluster delete are two commands)
        stop_processes([pid for pid, _ in processes_naming(self.mark)], STOP_TIMEOUT_SECONDS)

    def leftovers(self) -> list[str]:
        return [f"process {pid}: {command}" for pid, command in processes_naming(self.mark)]


def proxy_config(name: str, kubeconfig: Path) -> dict[str, object]:
    """kube-proxy's KubeProxyConfiguration for node NAME (the module docstring says why each
    host-facing field is what it is). `bindAddress` is the node's address: kube-proxy takes a
    non-zero bindAddress as the node's IP (iptables mode listens on nothing with it), while
    healthz and metrics listen on the namespace's loopback."""
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "hostnameOverride": name,
        "bindAddress": NODE_ADDRESS,
        "healthzBindAddress": HEALTHZ_ADDRESS,
        "metricsBindAddress": METRICS_ADDRESS,
        "mode": "iptables",
        "clusterCIDR": POD_SUBNET,
        "detectLocalMode": "ClusterCIDR",
        "nodePortAddresses": [f"{NODE_ADDRESS}/32"],
        "oomScoreAdj": 0,
        "iptables": {
            "masqueradeAll": False,
            "localhostNodePorts": False,
            "syncPeriod": "30s",
            "minSyncPeriod": "1s",
        },
        "conntrack": {
            "maxPerCore": 0,
            "min": 0,
            "tcpEstablishedTimeout": "0s",
            "tcpCloseWaitTimeout": "0s",
            "tcpBeLiberal": False,
            "udpTimeout": "0s",
            "udpStreamTimeout": "0s",
        },
    }


def netns_iptables_nat(netns: Path) -> str:
    """`iptables-save -t nat` inside NETNS."""
    result = subprocess.run(
        [*in_netns(netns), "iptables-save", "-t", "nat"], capture_output=True, text=True, timeout=30
    )
    return result.stdout


class KubeProxy:
    """kube-proxy for node NAME in NETNS, against KUBECONFIG (the node's), its config and log in
    RUN_DIR, the binary from TOOLS."""

    def __init__(
        self, name: str, netns: Path, kubeconfig: Path, run_dir: Path, tools: Path
    ) -> None:
        self.name, self.netns, self.kubeconfig = name, netns, kubeconfig
        self.run_dir, self.tools = run_dir, tools
        self.config = run_dir / "kube-proxy.json"
        self.log = run_dir / "kube-proxy.log"
        self.process = NetnsProcess(
            "kube-proxy",
            netns,
            [str(tools / "kube-proxy"), f"--config={self.config}", "--v=2"],
            self.log,
            str(self.config),
        )
        self._host: dict[str, str] = {}

    def start(self) -> None:
        """Bridge netfilter on in the namespace, the config written, kube-proxy started (its
        rules come with its first sync: `wait_ready`)."""
        if not os.access(self.tools / "kube-proxy", os.X_OK):
            raise UserError(f"kube-proxy is not installed in {self.tools}: run `make setup-node`")
        self._host = read_settings()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        bridge = [*in_netns(self.netns), "sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=1"]
        result = subprocess.run(bridge, capture_output=True, text=True)
        if result.returncode != 0:
            raise UserError(f"bridge-nf-call-iptables in {self.netns}: {result.stderr.strip()}")
        # JSON, which kube-proxy reads as YAML: a node called `n` or `on` stays a string.
        self.config.write_text(json.dumps(proxy_config(self.name, self.kubeconfig), indent=2))
        self.process.start()

    def wait_ready(self, timeout: float = START_TIMEOUT_SECONDS) -> None:
        """Waits for its first sync: the namespace's nat table has the `kubernetes` Service."""
        self.process.wait_ready(
            "its first Service rules (the `kubernetes` Service's, in the nat table)",
            lambda: "default/kubernetes:https" in netns_iptables_nat(self.netns),
            timeout,
        )

    def stop(self) -> None:
        """SIGTERM, then SIGKILL; host settings it changed, if any, written back. Its rules stay
        in the namespace, which the node deletes."""
        self.process.stop()
        for file, value in self._host.items():
            with contextlib.suppress(OSError):
                if Path(file).read_text().strip() != value:
                    Path(file).write_text(value)

    def leftovers(self) -> list[str]:
        """Its process, and host settings not as they were before it started."""
        found = self.process.leftovers()
        now = read_settings(tuple(self._host))
        found += [
            f"host setting {file}={now.get(file)} (was {value})"
            for file, value in self._host.items()
            if now.get(file) != value
        ]
        return found
