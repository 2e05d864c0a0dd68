"""The real node's Services and names: kube-proxy (iptables, in the node's namespace) and the
real CoreDNS behind kube-system/kube-dns (tooling/node/kube_proxy.py, cluster_dns.py).

The config tests are fast. The runtime test runs on the shared node cluster (root and `make
setup-node`; `make test` has both) and is slow: two pods."""

from __future__ import annotations

import ipaddress
import json
import subprocess
from pathlib import Path

import pytest
import yaml
from test_node_setup import IMAGES

from tooling import paths
from tooling.node import cluster_dns, kube_proxy
from tooling.node.containerd import in_netns
from tooling.node.node import NODE_ADDRESS, POD_SUBNET, SERVICE_SUBNET, netns_name

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


def _wait_phase(core, namespace: str, name: str, phases: set[str], timeout: float = 90):
    """The pod once its phase is one of `phases`."""
    from tooling.waiting import wait_for

    wait_for(
        lambda: core.read_namespaced_pod(name, namespace).status.phase in phases,
        timeout,
        f"pod {name} {phases}",
    )
    return core.read_namespaced_pod(name, namespace)


@pytest.mark.slow
def test_a_pod_reaches_another_by_its_service_name(node_cluster):
    """On the shared node cluster (its teardown checks that the services and the host's
    routes, rules and settings are left as they were): CoreDNS answers the cluster's zones and
    nothing else, and a pod reaches another through kube-proxy by its Service's full name and
    by the search path."""
    from conftest import namespace_in
    from kubernetes import client

    from tooling.kube import api_client

    api = api_client(node_cluster.kubeconfig)
    core = client.CoreV1Api(api)
    node = node_cluster.name
    inside = [
        *in_netns(Path("/run/netns") / netns_name(node)),
        "cat",
        "/proc/sys/net/bridge/bridge-nf-call-iptables",
    ]
    assert subprocess.run(inside, capture_output=True, text=True).stdout.strip() == "1"
    # no upstream: outside the cluster's zones, REFUSED; an unknown Service, NXDOMAIN
    assert cluster_dns.query("example.com")[0] == cluster_dns.RCODE_REFUSED
    unknown = cluster_dns.query("nothing.default.svc.cluster.local")
    assert unknown[0] == cluster_dns.RCODE_NXDOMAIN
    with namespace_in(api, "node-services", restricted=False) as namespace:
        serve = f"mkdir -p /tmp/www && echo {WEB} > /tmp/www/index.html && "
        serve += "exec httpd -f -p 8080 -h /tmp/www"
        core.create_namespaced_pod(namespace, _pod("web", serve, {"app": "web"}, nodeName=node))
        web = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
        }
        cluster_ip = core.create_namespaced_service(namespace, web).spec.cluster_ip
        _wait_phase(core, namespace, "web", {"Running"})
        full_name = f"web.{namespace}.svc.cluster.local"
        assert cluster_dns.query(full_name) == (0, [cluster_ip])
        ask = (  # its output as the termination message: the API server reads no kubelet logs
            f"set -e; {{ cat /etc/resolv.conf; nslookup {full_name}; "
            f"curl -sS --max-time 10 http://{full_name}/; "
            "curl -sS --max-time 10 http://web/; } > /dev/termination-log 2>&1"
        )
        core.create_namespaced_pod(
            namespace, _pod("client", ask, nodeName=node, restartPolicy="Never")
        )
        done = _wait_phase(core, namespace, "client", {"Succeeded", "Failed"})
        log = done.status.container_statuses[0].state.terminated.message or ""
        assert done.status.phase == "Succeeded", log
        assert f"nameserver {cluster_dns.CLUSTER_DNS_IP}" in log  # the kubelet's clusterDNS
        assert cluster_ip in log  # nslookup through the kube-dns ClusterIP
        assert log.count(WEB) == 2, log  # by its full name and by the search path
