"""The real node's Services and names: kube-proxy (iptables, in the node's namespace) and the
real CoreDNS behind kube-system/kube-dns (tooling/node/kube_proxy.py, cluster_dns.py).

The config tests are fast. The runtime test needs root and `make setup-node`, as
tests/test_node_setup.py's (whose checks it reuses), and is slow: a control plane, a real
node, two pods."""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from test_node_setup import IMAGES, _host_network, _kwok_control_plane_without_kwok, runtime

from tooling import paths
from tooling.node import cluster_dns, kube_proxy
from tooling.node.containerd import in_netns
from tooling.node.node import NODE_ADDRESS, POD_SUBNET, SERVICE_SUBNET

ROOT = Path(__file__).resolve().parent.parent


def test_kube_proxy_writes_no_host_wide_setting_and_masquerades_nothing_outward():
    config = kube_proxy.proxy_config("n", Path("/k"))
    conntrack = config["conntrack"]
    assert conntrack["maxPerCore"] == 0  # no nf_conntrack_max, so no host-wide hashsize
    for timeout in ("tcpEstablishedTimeout", "tcpCloseWaitTimeout", "udpTimeout"):
        assert conntrack[timeout] == "0s", timeout
    assert conntrack["tcpBeLiberal"] is False
    assert config["iptables"]["localhostNodePorts"] is False  # no route_localnet
    assert config["nodePortAddresses"] == [f"{NODE_ADDRESS}/32"]
    assert config["iptables"]["masqueradeAll"] is False
    assert config["clusterCIDR"] == POD_SUBNET
    assert config["mode"] == "iptables"
    assert config["oomScoreAdj"] == 0  # root lacks CAP_SYS_RESOURCE for its -999
    assert config["bindAddress"] == NODE_ADDRESS  # kube-proxy's node IP
    for listener in ("healthzBindAddress", "metricsBindAddress"):
        assert config[listener].startswith("127.0.0.1:"), listener
    # written as JSON: YAML 1.1 would read a node called `n` as false
    assert yaml.safe_load(json.dumps(config))["hostnameOverride"] == "n"


def test_kube_dns_is_a_selectorless_service_whose_slice_names_the_node():
    service, endpoints = cluster_dns.kube_dns_objects()
    assert (service["kind"], service["metadata"]["namespace"]) == ("Service", "kube-system")
    assert service["metadata"]["name"] == "kube-dns"
    assert "selector" not in service["spec"]
    assert service["spec"]["clusterIP"] == cluster_dns.CLUSTER_DNS_IP
    assert ipaddress.ip_address(cluster_dns.CLUSTER_DNS_IP) in ipaddress.ip_network(SERVICE_SUBNET)
    ports = {(p["name"], p["protocol"], p["port"]) for p in service["spec"]["ports"]}
    assert ports == {("dns", "UDP", 53), ("dns-tcp", "TCP", 53)}
    assert endpoints["apiVersion"] == "discovery.k8s.io/v1"
    labels = endpoints["metadata"]["labels"]
    assert labels["kubernetes.io/service-name"] == "kube-dns"
    # not the EndpointSlice controller's, which would take it over
    assert labels["endpointslice.kubernetes.io/managed-by"] != "endpointslice-controller.k8s.io"
    (endpoint,) = endpoints["endpoints"]
    assert endpoint["addresses"] == [NODE_ADDRESS]
    assert {(p["name"], p["protocol"], p["port"]) for p in endpoints["ports"]} == ports


def test_corefile_serves_the_cluster_zones_on_the_node_address_with_no_upstream():
    text = cluster_dns.corefile(Path("/run/x/kubelet.kubeconfig"))
    assert text.startswith("cluster.local:53 in-addr.arpa:53 ip6.arpa:53 {")
    assert f"bind {NODE_ADDRESS}\n" in text
    assert "kubeconfig /run/x/kubelet.kubeconfig\n" in text
    assert "pods insecure\n" in text
    assert "forward" not in text
    assert "health 127.0.0.1:" in text and "ready 127.0.0.1:" in text


def test_coredns_is_pinned_and_built_by_setup_node():
    assert paths.pinned_versions().get("COREDNS_VERSION", "").startswith("v")
    script = (ROOT / "hack" / "install-node.sh").read_text()
    assert 'build coredns "$COREDNS_VERSION"' in script


# --- on a real node ---------------------------------------------------------------------------

WEB = "hello-from-web"


def _pod(name: str, command: str, labels: dict[str, str] | None = None, **spec: object) -> dict:
    reference = (IMAGES / "fetcher.ref").read_text().strip()
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {
            "automountServiceAccountToken": False,
            "terminationGracePeriodSeconds": 1,
            "containers": [
                {
                    "name": name,
                    "image": reference,
                    "imagePullPolicy": "Never",
                    "command": ["sh", "-c", command],
                }
            ],
            **spec,
        },
    }


def _wait_phase(core, name: str, phases: set[str], timeout: float = 90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pod = core.read_namespaced_pod(name, "default")
        if pod.status.phase in phases:
            return pod
        time.sleep(1)
    raise AssertionError(f"pod {name} not {phases} in {timeout:.0f} s: {pod.status}")


def _routes() -> str:
    return subprocess.run(["ip", "route"], capture_output=True, text=True).stdout


@pytest.mark.slow
@runtime
def test_a_pod_reaches_another_by_its_service_name_then_nothing_is_left(tmp_path):
    from kubernetes import client

    from tooling.kube import api_client
    from tooling.node.node import RealNode
    from tooling.node.node_cluster import node_ready
    from tooling.rehearsal.cluster import delete_cluster

    tools = paths.tools_bin()
    for needed in (tools / "kubelet", tools / "kube-proxy", tools / "coredns"):
        if not needed.exists():
            pytest.skip(f"{needed} is not installed: run `make setup-node`")
    if not (IMAGES / "fetcher.tar").exists():
        pytest.skip("the fetcher image is missing: run `make setup-node`")
    name = f"svc-test-{os.getpid()}"
    before, routes, settings = _host_network(), _routes(), kube_proxy.read_settings()
    node = proxy = dns = None
    try:
        kubeconfig, ca_file = _kwok_control_plane_without_kwok(name, tmp_path)
        api = api_client(kubeconfig)
        core, discovery = client.CoreV1Api(api), client.DiscoveryV1Api(api)
        node = RealNode(name, kubeconfig, ca_file, cluster_dns=[cluster_dns.CLUSTER_DNS_IP])
        node.start()
        node.wait_ready(lambda: node_ready(core, name))
        node.runtime.import_image(IMAGES / "fetcher.tar")
        node_kubeconfig = node.where.run / "kubelet.kubeconfig"
        services = tmp_path / "services"
        proxy = kube_proxy.KubeProxy(name, node.netns, node_kubeconfig, services, tools)
        dns = cluster_dns.ClusterDns(name, node.netns, node_kubeconfig, services, tools)
        service, endpoints = cluster_dns.kube_dns_objects()
        core.create_namespaced_service("kube-system", service)
        discovery.create_namespaced_endpoint_slice("kube-system", endpoints)
        proxy.start()
        dns.start()
        proxy.wait_ready()
        dns.wait_ready()
        inside = [*in_netns(node.netns), "cat", "/proc/sys/net/bridge/bridge-nf-call-iptables"]
        assert subprocess.run(inside, capture_output=True, text=True).stdout.strip() == "1"
        # no upstream: outside the cluster's zones, REFUSED; an unknown Service, NXDOMAIN
        assert cluster_dns.query("example.com")[0] == cluster_dns.RCODE_REFUSED
        unknown = cluster_dns.query("nothing.default.svc.cluster.local")
        assert unknown[0] == cluster_dns.RCODE_NXDOMAIN

        serve = f"mkdir -p /tmp/www && echo {WEB} > /tmp/www/index.html && "
        serve += "exec httpd -f -p 8080 -h /tmp/www"
        core.create_namespaced_pod("default", _pod("web", serve, {"app": "web"}, nodeName=name))
        web = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
        }
        cluster_ip = core.create_namespaced_service("default", web).spec.cluster_ip
        _wait_phase(core, "web", {"Running"})
        assert cluster_dns.query("web.default.svc.cluster.local") == (0, [cluster_ip])
        ask = (  # its output as the termination message: the API server reads no kubelet logs
            "set -e; { cat /etc/resolv.conf; nslookup web.default.svc.cluster.local; "
            "curl -sS --max-time 10 http://web.default.svc.cluster.local/; "
            "curl -sS --max-time 10 http://web/; } > /dev/termination-log 2>&1"
        )
        core.create_namespaced_pod(
            "default", _pod("client", ask, nodeName=name, restartPolicy="Never")
        )
        done = _wait_phase(core, "client", {"Succeeded", "Failed"})
        log = done.status.container_statuses[0].state.terminated.message or ""
        assert done.status.phase == "Succeeded", log
        assert f"nameserver {cluster_dns.CLUSTER_DNS_IP}" in log  # the kubelet's clusterDNS
        assert cluster_ip in log  # nslookup through the kube-dns ClusterIP
        assert log.count(WEB) == 2, log  # by its full name and by the search path
        for pod in ("client", "web"):
            core.delete_namespaced_pod(pod, "default", grace_period_seconds=1)
    finally:
        for service in (dns, proxy):
            if service is not None:
                service.stop()
        if node is not None:
            node.stop()
            node.runtime.forget()
        delete_cluster(name)
    assert proxy.leftovers() == [] and dns.leftovers() == []
    assert node.leftovers() == []
    assert _host_network() == before
    assert _routes() == routes
    assert kube_proxy.read_settings() == settings
