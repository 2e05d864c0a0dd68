"""`model.source.caBundle`: the init container's curl trusts a ConfigMap's PEM bundle (a model
store behind a private CA, e.g. the cluster's CA in `kube-root-ca.crt`). Rendered: the bundle
mounted read-only where CURL_CA_BUNDLE points, off by default, bad values refused naming the
key. Run for real: fetch-model.sh against a local TLS server whose certificate a private CA
signed, trusted with the bundle and refused, saying what to set, without it."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import helm_cli as helm
import pytest
import yaml
from conftest import RESNET_CHART, one_of, render
from pod_security import restricted_violations
from test_fetch_model import MODEL_FILES, run_fetch, saved_model_tarball

from tooling.certificates import issue_certificate
from tooling.node.model_store_server import tls_server

HTTPS = {"model": {"source": {"uri": "https://models.example.com/m/image_classifier.tar.gz"}}}
BUNDLE = {"configMap": "kube-root-ca.crt", "key": "ca.crt"}


KWOKCTL_CA_CONFIG = """\
[req]
distinguished_name = subject
[subject]
[kwokctl_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,digitalSignature,keyEncipherment,keyCertSign
subjectKeyIdentifier = hash
"""


def make_ca(folder: Path, name: str = "test-ca") -> tuple[Path, Path]:
    """A private CA made as kwokctl makes a cluster's (kwok v0.8.0's pkg/kwokctl/pki): RSA 2048,
    its key in PKCS#1 PEM (`RSA PRIVATE KEY`, no passphrase), serial 0 (which RFC 5280
    disallows), key usages digitalSignature, keyEncipherment and keyCertSign, a subject key
    identifier; made with openssl as FOLDER/NAME.crt and NAME.key."""
    cert, key, config = folder / f"{name}.crt", folder / f"{name}.key", folder / f"{name}.cnf"
    config.write_text(KWOKCTL_CA_CONFIG)

    def openssl(*args: str | Path, given: bytes | None = None) -> bytes:
        command = ["openssl", *map(str, args)]
        return subprocess.run(command, input=given, check=True, capture_output=True).stdout

    pkcs8 = openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048")
    openssl("pkey", "-traditional", "-out", key, given=pkcs8)
    openssl(
        *("req", "-new", "-x509", "-key", key, "-subj", f"/CN={name}", "-days", "1"),
        *("-set_serial", "0", "-sha256", "-config", config, "-extensions", "kwokctl_ca"),
        *("-out", cert),
    )
    return cert, key


def render_with(tmp_path: Path, values: dict, helm_name: str = "helm") -> tuple[dict, ...]:
    values_file = tmp_path / "values.yaml"
    values_file.write_text(yaml.safe_dump(values))
    return tuple(helm.Helm.pinned(helm_name).template(RESNET_CHART, [values_file]))


def fetch_container(objects: tuple[dict, ...]) -> tuple[dict, dict]:
    """(the pod spec, its fetch-model init container)."""
    pod = one_of(objects, "Deployment", "resnet-serving")["spec"]["template"]["spec"]
    (fetch,) = pod["initContainers"]
    return pod, fetch


@pytest.mark.parametrize("key", ["ca.crt", "bundle.pem"])
def test_the_bundle_is_mounted_read_only_where_curl_ca_bundle_points(key, tmp_path):
    values = {"model": {"source": {**HTTPS["model"]["source"], "caBundle": {**BUNDLE, "key": key}}}}
    pod, fetch = fetch_container(render_with(tmp_path, values))
    env = {e["name"]: e.get("value") for e in fetch["env"]}
    (mount,) = [m for m in fetch["volumeMounts"] if m["name"] == "model-ca"]
    (volume,) = [v for v in pod["volumes"] if v["name"] == "model-ca"]
    assert mount["readOnly"] is True
    assert volume["configMap"]["name"] == "kube-root-ca.crt"
    (item,) = volume["configMap"]["items"]
    assert item["key"] == key
    assert env["CURL_CA_BUNDLE"] == f"{mount['mountPath']}/{item['path']}"
    server = next(c for c in pod["containers"] if c["name"] == "tensorflow-serving")
    assert "model-ca" not in {m["name"] for m in server["volumeMounts"]}  # the fetcher's only
    assert not list(restricted_violations(pod)), "a ConfigMap volume stays restricted"


@pytest.mark.parametrize("values_file", helm.ci_values_files(RESNET_CHART), ids=lambda p: p.stem)
def test_curl_keeps_the_images_cas_unless_values_name_a_bundle(values_file):
    values = yaml.safe_load(values_file.read_text())
    bundle = ((values.get("model") or {}).get("source") or {}).get("caBundle") or {}
    pod, fetch = fetch_container(render(RESNET_CHART, values_file))
    named = bool(bundle.get("configMap"))
    assert ("CURL_CA_BUNDLE" in {e["name"] for e in fetch["env"]}) is named
    assert ("model-ca" in {v["name"] for v in pod["volumes"]}) is named


@pytest.mark.parametrize(
    ("bundle", "uri", "words"),
    [
        ({"configMap": "Kube_Root"}, None, ["caBundle", "configMap"]),
        ({"configMap": "kube-root-ca.crt", "key": "certs/ca.crt"}, None, ["caBundle", "key"]),
        ({"configMap": "kube-root-ca.crt", "key": ".."}, None, ["caBundle", "key"]),
        ({"configMap": "kube-root-ca.crt", "keys": "ca.crt"}, None, ["keys"]),
        (BUNDLE, "gs://my-bucket/resnet_101", ["model.source.caBundle.configMap", "https://"]),
    ],
    ids=["configmap-name", "key-with-slash", "key-dotdot", "typo", "gcs-source"],
)
def test_bad_bundle_values_fail_naming_the_key(bundle, uri, words, helm_name, tmp_path):
    source = {"uri": uri or HTTPS["model"]["source"]["uri"], "caBundle": bundle}
    with pytest.raises(helm.HelmError) as failure:
        render_with(tmp_path, {"model": {"source": source}}, helm_name)
    message = str(failure.value)
    for word in words:
        assert word in message or word.replace(".", "/") in message, message


def test_the_same_bundle_with_an_https_source_renders(helm_name, tmp_path):
    """The failures above are the mistakes', not the bundle's."""
    source = {**HTTPS["model"]["source"], "caBundle": BUNDLE}
    assert render_with(tmp_path, {"model": {"source": source}}, helm_name)


@pytest.fixture(scope="module")
def private_ca_store(tmp_path_factory) -> Iterator[tuple[str, Path, Path]]:
    """The model store's TLS server on 127.0.0.1, its certificate signed by a private CA, with
    a model tarball; yields (its URL, the CA's certificate, another CA's certificate)."""
    folder = tmp_path_factory.mktemp("private-ca")
    ca_cert, ca_key = make_ca(folder)
    other_ca, _ = make_ca(folder, "other-ca")
    cert, key = folder / "server.crt", folder / "server.key"
    issue_certificate(ca_cert, ca_key, cert, key, ("localhost",), ("127.0.0.1",))
    tarball = folder / "model.tar.gz"
    tarball.write_bytes(saved_model_tarball(MODEL_FILES))
    server = tls_server("127.0.0.1", 0, cert, key, tarball, "/resnet101.tar.gz")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://localhost:{server.server_address[1]}/resnet101.tar.gz", ca_cert, other_ca
    server.shutdown()
    server.server_close()


def test_fetch_trusts_the_private_ca_from_the_bundle(private_ca_store, tmp_path):
    url, ca_cert, _ = private_ca_store
    model_dir = tmp_path / "models" / "image_classifier"
    code, output, _ = run_fetch(url, model_dir, tmp_path, CURL_CA_BUNDLE=str(ca_cert))
    assert code == 0, output
    assert "versions: 1" in output
    assert (model_dir / "1" / "saved_model.pb").read_bytes() == MODEL_FILES["1/saved_model.pb"]


def test_fetch_without_the_bundle_refuses_the_server_saying_what_to_set(private_ca_store, tmp_path):
    url, _, _ = private_ca_store
    code, output, message = run_fetch(url, tmp_path / "m", tmp_path)
    assert code == 1
    assert "curl: (60)" in output  # curl's own reason, above the script's line
    assert "do not trust" in message and "model.source.caBundle.configMap" in message
    assert "kube-root-ca.crt" in message
    assert not (tmp_path / "m").exists()


def test_fetch_with_another_cas_bundle_names_the_bundle(private_ca_store, tmp_path):
    url, _, other_ca = private_ca_store
    code, _, message = run_fetch(url, tmp_path / "m", tmp_path, CURL_CA_BUNDLE=str(other_ca))
    assert code == 1
    assert f"the CA bundle {other_ca} (model.source.caBundle) does not trust" in message


def test_fetch_with_a_bundle_that_is_not_pem_says_so(private_ca_store, tmp_path):
    url, _, _ = private_ca_store
    bundle = tmp_path / "bundle.pem"
    bundle.write_text("not a certificate\n")
    code, output, message = run_fetch(url, tmp_path / "m", tmp_path, CURL_CA_BUNDLE=str(bundle))
    assert code == 1
    assert f"could not read the CA bundle {bundle}" in message, output
