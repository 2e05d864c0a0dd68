"""Cluster DNS on the real node: the real CoreDNS (built by `make setup-node`) in the node's
network namespace, listening on the node's address, port 53, behind the Service `kube-dns` at
CLUSTER_DNS_IP (the kubelet's `clusterDNS`), which kube-proxy sends to it.

CoreDNS runs as a node process, not a pod: `kube_dns_objects` is a selectorless Service and an
EndpointSlice of ours naming the node's address. Its `kubernetes` plugin answers
`cluster.local` and the reverse zones from the API server (`kubeconfig`, the node's), with
`pods insecure`. There is no upstream and no `forward`: nothing a pod asks leaves this
machine, so a name outside those zones is answered REFUSED (no server block holds it). Health
and readiness listen on the namespace's loopback.
"""

from __future__ import annotations

import os
import secrets
import socket
import struct
from pathlib import Path

from tooling.errors import UserError
from tooling.node.kube_proxy import NetnsProcess
from tooling.node.node import NODE_ADDRESS

CLUSTER_DNS_IP = "10.0.0.10"
CLUSTER_DOMAIN = "cluster.local"
DNS_PORT = 53
HEALTH_ADDRESS = "127.0.0.1:8080"  # inside the node's namespace
READY_ADDRESS = "127.0.0.1:8181"
MANAGED_BY = "resnet-serving-node"  # the EndpointSlice's manager: not the controller's
READY_TIMEOUT_SECONDS = 60.0
RCODE_NOERROR, RCODE_SERVFAIL, RCODE_NXDOMAIN, RCODE_REFUSED = 0, 2, 3, 5


def kube_dns_objects() -> list[dict]:
    """The API objects that send CLUSTER_DNS_IP to CoreDNS on the node: the Service
    kube-system/kube-dns (no selector) and its EndpointSlice, the node's address on port 53."""
    ports = [("dns", "UDP"), ("dns-tcp", "TCP")]
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "kube-dns",
            "namespace": "kube-system",
            "labels": {"k8s-app": "kube-dns", "kubernetes.io/name": "CoreDNS"},
        },
        "spec": {
            "clusterIP": CLUSTER_DNS_IP,
            "ports": [
                {"name": n, "port": DNS_PORT, "protocol": p, "targetPort": DNS_PORT}
                for n, p in ports
            ],
        },
    }
    endpoints = {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": "kube-dns-node",
            "namespace": "kube-system",
            "labels": {
                "kubernetes.io/service-name": "kube-dns",
                "endpointslice.kubernetes.io/managed-by": MANAGED_BY,
            },
        },
        "addressType": "IPv4",
        "endpoints": [{"addresses": [NODE_ADDRESS], "conditions": {"ready": True}}],
        "ports": [{"name": n, "port": DNS_PORT, "protocol": p} for n, p in ports],
    }
    return [service, endpoints]


def corefile(kubeconfig: Path) -> str:
    """CoreDNS's configuration: one server block for the cluster's zones on the node's address."""
    return f"""{CLUSTER_DOMAIN}:{DNS_PORT} in-addr.arpa:{DNS_PORT} ip6.arpa:{DNS_PORT} {{
    bind {NODE_ADDRESS}
    errors
    health {HEALTH_ADDRESS}
    ready {READY_ADDRESS}
    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
        kubeconfig {kubeconfig}
        pods insecure
        ttl 30
    }}
    cache 30
    loadbalance
}}
"""


def query(name: str, server: str = NODE_ADDRESS, timeout: float = 2.0) -> tuple[int, list[str]]:
    """One DNS query over UDP for NAME's A records: (the response's rcode, the addresses)."""
    ident = secrets.randbits(16)
    question = b"".join(bytes([len(p)]) + p.encode() for p in name.rstrip(".").split("."))
    packet = struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0) + question + b"\0\0\1\0\1"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(packet, (server, DNS_PORT))
        while True:
            reply = sock.recv(4096)
            if struct.unpack("!H", reply[:2])[0] == ident:
                break
    flags, questions, answers = struct.unpack("!HHH", reply[2:8])
    offset = 12
    for _ in range(questions):
        offset = _skip_name(reply, offset) + 4
    addresses = []
    for _ in range(answers):
        offset = _skip_name(reply, offset)
        kind, _class, _ttl, length = struct.unpack("!HHIH", reply[offset : offset + 10])
        offset += 10
        if kind == 1 and length == 4:
            addresses.append(socket.inet_ntoa(reply[offset : offset + 4]))
        offset += length
    return flags & 0xF, addresses


def _skip_name(message: bytes, offset: int) -> int:
    while message[offset] != 0:
        if message[offset] & 0xC0 == 0xC0:  # a compression pointer ends the name
            return offset + 2
        offset += message[offset] + 1
    return offset + 1


class ClusterDns:
    """CoreDNS for node NAME in NETNS, reading the API through KUBECONFIG (the node's), its
    Corefile and log in RUN_DIR, the binary from TOOLS."""

    def __init__(
        self, name: str, netns: Path, kubeconfig: Path, run_dir: Path, tools: Path
    ) -> None:
        self.name, self.netns, self.kubeconfig = name, netns, kubeconfig
        self.run_dir, self.tools = run_dir, tools
        self.corefile = run_dir / "Corefile"
        self.log = run_dir / "coredns.log"
        self.process = NetnsProcess(
            "CoreDNS",
            netns,
            [str(tools / "coredns"), "-conf", str(self.corefile)],
            self.log,
            str(self.corefile),
        )

    def start(self) -> None:
        """Writes the Corefile and starts CoreDNS (it answers once synced: `wait_ready`)."""
        if not os.access(self.tools / "coredns", os.X_OK):
            raise UserError(f"coredns is not installed in {self.tools}: run `make setup-node`")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.corefile.write_text(corefile(self.kubeconfig))
        self.process.start()

    def wait_ready(self, timeout: float = READY_TIMEOUT_SECONDS) -> None:
        """Waits until CoreDNS answers `kubernetes.default.svc` with its ClusterIP, asked from
        the host through the veth (so its API watch has synced)."""
        name = f"kubernetes.default.svc.{CLUSTER_DOMAIN}"

        def answers() -> bool:
            try:
                rcode, addresses = query(name, timeout=1.0)
            except OSError:  # not listening yet (refused) or no answer in time
                return False
            return rcode == RCODE_NOERROR and bool(addresses)

        self.process.wait_ready(f"an answer for {name}", answers, timeout)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL."""
        self.process.stop()

    def leftovers(self) -> list[str]:
        """Its process, if any is left."""
        return self.process.leftovers()
