"""The node cluster's model store, on loopback (in the node's network namespace it is the same
process at NODE_ADDRESS:8443; that part is the node provider's integration test): its
certificate verifies against the CA that signed it for the Service's names, GET returns the
tarball's bytes, HEAD its size, any other path 404, every request is logged, and a stopped
store leaves nothing. Its Service and EndpointSlice are valid Kubernetes and point at it, and
the tarball is exported once per content of tooling/model/*.py. The one certificate maker
(tooling/certificates.py) is tested here for both its callers: this store under a CA like
kwokctl's, and KEDA's processes under a CA it makes."""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import socket
import ssl
import subprocess
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import helm_cli as helm
import kubernetes_validate
import pytest
from conftest import LOCUST_CHART, RESNET_CHART, one_of, render
from pod_security import pod_spec_of
from test_model_ca_bundle import make_ca

from tooling import certificates, paths
from tooling.errors import UserError
from tooling.node import model_export, model_store
from tooling.node.model_store import (
    DNS_NAMES,
    MODEL_STORE_URI,
    URL_PATH,
    ModelStore,
    model_store_objects,
)

TARBALL_BYTES = os.urandom(3 * 1024 * 1024 + 17)  # more than one copy chunk (1 MiB)


@pytest.fixture(scope="module")
def ca(tmp_path_factory) -> tuple[Path, Path]:
    return make_ca(tmp_path_factory.mktemp("ca"), "cluster-ca")


@pytest.fixture(scope="module")
def store(ca, tmp_path_factory) -> Iterator[ModelStore]:
    """The store as a process on 127.0.0.1 (a free port), serving TARBALL_BYTES."""
    folder = tmp_path_factory.mktemp("store")
    tarball = folder / "resnet101.tar.gz"
    tarball.write_bytes(TARBALL_BYTES)
    ca_cert, ca_key = ca
    with ModelStore("test", None, ca_cert, ca_key, tarball, folder / "run", "127.0.0.1", 0) as s:
        yield s


@pytest.mark.parametrize("name", DNS_NAMES[:2])
def test_the_certificate_verifies_for_the_services_names_with_the_cluster_ca(store, ca, name):
    connection = connection_for(store, ca[0], name)
    peer = connection.sock.getpeercert()  # verified: its fields parsed
    assert set(DNS_NAMES) <= {value for kind, value in peer["subjectAltName"] if kind == "DNS"}
    assert peer["issuer"] == ((("commonName", "cluster-ca"),),)
    connection.close()


def connection_for(store: ModelStore, ca_cert: Path, name: str) -> http.client.HTTPSConnection:
    """An https connection to the store's address, its certificate verified with the CA for
    the server name `name` (the pods' name for it, not the address connected to)."""
    context = ssl.create_default_context(cafile=str(ca_cert))
    raw = socket.create_connection((store.address, store.port), timeout=10)
    connection = http.client.HTTPSConnection(name, store.port, timeout=10, context=context)
    connection.sock = context.wrap_socket(raw, server_hostname=name)
    return connection


def test_another_name_or_another_ca_is_refused(store, ca, tmp_path):
    with pytest.raises(ssl.SSLCertVerificationError, match="match"):
        connection_for(store, ca[0], "model-store.elsewhere.svc.cluster.local")
    other, _ = make_ca(tmp_path, "other-ca")
    with pytest.raises(ssl.SSLCertVerificationError, match="local issuer"):
        connection_for(store, other, DNS_NAMES[0])


# The one certificate maker, for each caller: the model store (signed by kwokctl's CA, for the
# Service's names and the node's address, server auth) and KEDA's processes (a CA made here,
# loopback and a Service name, server and client auth).
CALLERS = {
    "model-store-kwokctl-ca": (DNS_NAMES, ("10.233.0.2",), (certificates.SERVER_AUTH,)),
    "keda-own-ca": (
        ("keda-operator.keda.svc",),
        ("127.0.0.1",),
        (certificates.SERVER_AUTH, certificates.CLIENT_AUTH),
    ),
}


def openssl_verify(ca_cert: Path, cert: Path, *checks: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["openssl", "verify", "-CAfile", str(ca_cert), *checks, str(cert)],
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize("caller", sorted(CALLERS))
def test_the_maker_issues_what_each_caller_asks_for_and_openssl_verifies_it(caller, tmp_path):
    dns_names, ips, usages = CALLERS[caller]
    if caller.startswith("model-store"):
        ca_cert, ca_key = make_ca(tmp_path, "cluster-ca")  # RSA, PKCS#1, serial 0
    else:
        ca_cert, ca_key = tmp_path / "ca.crt", tmp_path / "ca.key"
        certificates.make_ca(ca_cert, ca_key, "own CA")
        assert ca_key.stat().st_mode & 0o777 == 0o600
    cert, key = tmp_path / "leaf.crt", tmp_path / "leaf.key"
    certificates.issue_certificate(ca_cert, ca_key, cert, key, dns_names, ips, usages)
    assert key.stat().st_mode & 0o777 == 0o600
    for name in dns_names:
        verified = openssl_verify(ca_cert, cert, "-purpose", "sslserver", "-verify_hostname", name)
        assert verified.returncode == 0, verified.stderr
    for ip in ips:
        verified = openssl_verify(ca_cert, cert, "-purpose", "sslserver", "-verify_ip", ip)
        assert verified.returncode == 0, verified.stderr
    as_client = openssl_verify(ca_cert, cert, "-purpose", "sslclient")
    assert (as_client.returncode == 0) is (certificates.CLIENT_AUTH in usages), as_client.stdout
    assert openssl_verify(ca_cert, cert, "-verify_hostname", "elsewhere").returncode != 0
    sans = subprocess.run(
        ["openssl", "x509", "-in", cert, "-noout", "-ext", "subjectAltName"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()[1]
    expected = [*(f"DNS:{name}" for name in dns_names), *(f"IP Address:{ip}" for ip in ips)]
    assert sans.strip().split(", ") == expected


def test_a_key_is_made_anew_with_mode_0600_over_a_file_others_could_read(tmp_path):
    ca_cert, ca_key = tmp_path / "ca.crt", tmp_path / "ca.key"
    ca_key.write_text("an old key\n")
    ca_key.chmod(0o644)
    certificates.make_ca(ca_cert, ca_key, "own CA")
    assert ca_key.stat().st_mode & 0o777 == 0o600
    assert "an old key" not in ca_key.read_text()


def test_the_maker_fails_in_one_line_naming_the_file_or_the_missing_openssl(tmp_path, monkeypatch):
    ca_cert, ca_key = tmp_path / "ca.crt", tmp_path / "ca.key"
    certificates.make_ca(ca_cert, ca_key, "own CA")
    ca_key.write_text("not a key\n")
    cert = tmp_path / "leaf.crt"
    said = f"openssl x509 failed making {re.escape(str(cert))}: "
    with pytest.raises(UserError, match=said) as failure:
        certificates.issue_certificate(ca_cert, ca_key, cert, tmp_path / "leaf.key", ["a"])
    assert "\n" not in str(failure.value)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(UserError, match=r"no openssl to make \S+/ca\.key: install it"):
        certificates.make_ca(ca_cert, ca_key, "own CA")


def request(store: ModelStore, ca_cert: Path, method: str, path: str) -> tuple[int, dict, bytes]:
    connection = connection_for(store, ca_cert, DNS_NAMES[0])
    connection.request(method, path)
    response = connection.getresponse()
    body = response.read()
    connection.close()
    return response.status, dict(response.getheaders()), body


def test_get_returns_the_tarballs_bytes(store, ca):
    status, headers, body = request(store, ca[0], "GET", URL_PATH)
    assert status == 200
    assert headers["Content-Type"] == "application/gzip"
    assert int(headers["Content-Length"]) == len(TARBALL_BYTES)
    assert body == TARBALL_BYTES


def test_head_gives_the_size_without_a_body(store, ca):
    status, headers, body = request(store, ca[0], "HEAD", URL_PATH)
    assert (status, body) == (200, b"")
    assert int(headers["Content-Length"]) == len(TARBALL_BYTES)
    assert "Accept-Ranges" not in headers


@pytest.mark.parametrize("path", ["/", "/other.tar.gz", "/resnet101.tar.gz/x", "/../etc/passwd"])
def test_any_other_path_is_404(store, ca, path):
    status, _, body = request(store, ca[0], "GET", path)
    assert status == 404
    assert URL_PATH.encode() in body  # says what is here


def test_every_request_is_logged(store, ca):
    request(store, ca[0], "HEAD", f"{URL_PATH}?logged=1")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and "logged=1" not in store.log.read_text():
        time.sleep(0.05)
    assert f'"HEAD {URL_PATH}?logged=1 HTTP/1.1" 200' in store.log.read_text()


def test_a_stopped_store_leaves_nothing_and_no_longer_listens(ca, tmp_path):
    tarball = tmp_path / "m.tar.gz"
    tarball.write_bytes(b"x")
    one = ModelStore("stop", None, *ca, tarball, tmp_path / "run", "127.0.0.1", 0)
    one.start()
    assert one.leftovers()  # the process and its folder, while it runs
    port = one.port
    one.stop()
    assert one.leftovers() == []
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2)


def test_a_store_another_process_started_is_stopped_by_its_run_folder(ca, tmp_path):
    """`cluster create` starts the store and `cluster delete`, another process, stops it."""
    tarball = tmp_path / "m.tar.gz"
    tarball.write_bytes(b"x")
    started = ModelStore("other", None, *ca, tarball, tmp_path / "run", "127.0.0.1", 0)
    started.start()
    pid = started.process.pid
    started.process = None  # as if this process had ended; the server runs on
    later = ModelStore("other", None, *ca, Path("/dev/null"), tmp_path / "run", "127.0.0.1", 0)
    assert later.server_pids() == [pid]
    later.stop()
    assert later.leftovers() == []
    with contextlib.suppress(ChildProcessError):  # stop may have reaped it already
        os.waitpid(pid, 0)  # reap it (it was this test's child)


def test_a_port_in_use_fails_in_one_line_naming_the_address(store, ca, tmp_path):
    tarball = tmp_path / "m.tar.gz"
    tarball.write_bytes(b"x")
    second = ModelStore("busy", None, *ca, tarball, tmp_path / "run", "127.0.0.1", store.port)
    with pytest.raises(UserError, match=rf"127\.0\.0\.1:{store.port}.*Address already in use"):
        second.start()
    assert second.leftovers() == []


def test_the_service_and_its_endpoint_slice_lead_to_the_store_on_the_node():
    namespace, service, endpoint_slice = model_store_objects()
    for obj in (namespace, service, endpoint_slice):
        kubernetes_validate.validate(obj, kubernetes_validate.latest_version(), strict=True)
    assert namespace["metadata"]["name"] == service["metadata"]["namespace"]
    assert "selector" not in service["spec"]  # its endpoints are ours, not a controller's
    labels = endpoint_slice["metadata"]["labels"]
    assert labels["kubernetes.io/service-name"] == service["metadata"]["name"]
    assert labels["endpointslice.kubernetes.io/managed-by"] != "endpointslice-controller.k8s.io"
    (port,) = service["spec"]["ports"]
    (slice_port,) = endpoint_slice["ports"]
    assert slice_port["name"] == port["name"]  # kube-proxy pairs them by name
    (endpoint,) = endpoint_slice["endpoints"]
    assert endpoint["addresses"] == [model_store.ADDRESS]
    assert (slice_port["port"], port["port"]) == (model_store.PORT, model_store.PORT)
    name = f"{service['metadata']['name']}.{namespace['metadata']['name']}.svc.cluster.local"
    assert f"https://{name}:{port['port']}{URL_PATH}" == MODEL_STORE_URI


def test_the_charts_accept_the_stores_uri():
    objects = helm.Helm.pinned().template(
        RESNET_CHART,
        [],
        [f"model.source.uri={MODEL_STORE_URI}", "model.source.caBundle.configMap=kube-root-ca.crt"],
    )
    pod = one_of(tuple(objects), "Deployment", "resnet-serving")["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in pod["initContainers"][0]["env"]}
    assert env["MODEL_SOURCE_URI"] == MODEL_STORE_URI


def test_the_cache_key_follows_the_model_sources(tmp_path, monkeypatch):
    sources = tmp_path / "model"
    sources.mkdir()
    (sources / "export.py").write_text("a = 1\n")
    monkeypatch.setattr(model_export, "MODEL_SOURCES", sources)
    first = model_export.model_sources_hash()
    (sources / "notes.txt").write_text("not a source")
    assert model_export.model_sources_hash() == first
    (sources / "export.py").write_text("a = 2\n")
    assert model_export.model_sources_hash() != first


def test_a_cached_tarball_is_not_exported_again(tmp_path, monkeypatch):
    cached = tmp_path / f"resnet101-{model_export.model_sources_hash()}.tar.gz"
    cached.write_bytes(b"cached")
    monkeypatch.setattr(model_export.subprocess, "run", None)  # an export would fail here
    assert model_export.model_tarball(tmp_path) == cached


@pytest.mark.slow
def test_the_tarball_is_the_packaged_model_exported_once(tmp_path):
    """A real export (TensorFlow, ResNet101, seeded random weights) into the per-user cache
    the node provider uses, unless it is there already; then it is not exported again."""
    said: list[str] = []
    tarball = model_export.model_tarball(progress=said.append)
    with tarfile.open(tarball) as tar:
        names = tar.getnames()
    assert "1/saved_model.pb" in names
    assert any(name.startswith("1/variables/") for name in names)
    assert "1/assets.extra/tf_serving_warmup_requests" in names
    again: list[str] = []
    started = time.monotonic()
    assert model_export.model_tarball(progress=again.append) == tarball
    assert again == [] and time.monotonic() - started < 1


NODE_VALUES = [chart / "ci" / "node-values.yaml" for chart in (RESNET_CHART, LOCUST_CHART)]
LOCAL_IMAGES = paths.REPO_ROOT / ".tools" / "images"


def node_values_containers() -> list[tuple[str, dict]]:
    """(values file's chart, container) for every container, init container and helm test
    container that the charts render with their ci/node-values.yaml."""
    found = []
    for values in NODE_VALUES:
        for obj in render(values.parent.parent, values):
            spec = pod_spec_of(obj) or {}
            for container in [*spec.get("initContainers", []), *spec.get("containers", [])]:
                found.append((values.parent.parent.name, container))
    return found


def test_the_node_values_name_only_images_built_here_and_never_pull():
    """The node has no registry: an image it would pull fails the pod (ErrImageNeverPull says
    which), so every container names a local image with pullPolicy Never."""
    containers = node_values_containers()
    assert {chart for chart, _ in containers} == {"resnet-serving", "locust"}
    for chart, container in containers:
        assert container["image"].startswith("resnet-serving/"), (chart, container["name"])
        assert container.get("imagePullPolicy") == "Never", (chart, container["name"])


def test_the_node_values_images_are_the_ones_make_setup_node_built():
    refs = sorted(LOCAL_IMAGES.glob("*.ref"))
    if not refs:
        pytest.skip(f"no {LOCAL_IMAGES}/*.ref: `make setup-node` (as root) builds the images")
    built = {ref.read_text().strip() for ref in refs}
    for chart, container in node_values_containers():
        assert container["image"] in built, (chart, container["name"], sorted(built))
