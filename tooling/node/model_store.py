"""The node cluster's model store: the packaged ResNet101 tarball served over https from inside
the node's network namespace, with a certificate the cluster's CA signs, so pods fetch it with
the chart's `model.source.caBundle` set to `kube-root-ca.crt`.

- `model_tarball()`: `resnet-serving model export` (seeded random weights, offline) and
  `model package`, once per content of tooling/model/*.py, kept in the per-user cache.
- `issue_server_certificate()`: a server certificate for the store's Service names, signed by
  the CA (kwokctl's pki/ca.crt and ca.key), made with `cryptography`, else the openssl CLI.
- `ModelStore`: `model_store_server` as a process in the node's netns, on NODE_ADDRESS:PORT.
- `model_store_objects()`: its Namespace, a selectorless Service and the EndpointSlice to the
  node's address, so kube-proxy takes pods to MODEL_STORE_URI.
"""

from __future__ import annotations

import datetime
import hashlib
import importlib.util
import ipaddress
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

from tooling import paths
from tooling.errors import UserError
from tooling.node import containerd
from tooling.node.model_store_server import READY_LINE
from tooling.node.processes import processes_naming, stop_processes

NAMESPACE = "resnet-serving-system"
SERVICE = "model-store"
PORT = 8443
ADDRESS = "10.233.0.2"  # the node's address (tooling.node.node.NODE_ADDRESS)
URL_PATH = "/resnet101.tar.gz"
DNS_NAMES = (
    f"{SERVICE}.{NAMESPACE}.svc.cluster.local",
    f"{SERVICE}.{NAMESPACE}.svc",
    f"{SERVICE}.{NAMESPACE}",
    SERVICE,
)
MODEL_STORE_URI = f"https://{DNS_NAMES[0]}:{PORT}{URL_PATH}"
MODEL_SOURCES = paths.REPO_ROOT / "tooling" / "model"
START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 10.0
EXPORT_TIMEOUT_SECONDS = 1800.0
CERTIFICATE_DAYS = 30


def model_sources_hash() -> str:
    """A hash of tooling/model/*.py (names and contents): the tarball's cache key."""
    digest = hashlib.sha256()
    for source in sorted(MODEL_SOURCES.glob("*.py")):
        digest.update(source.name.encode() + b"\0" + source.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def model_tarball(cache: Path | None = None, progress: Callable[[str], None] = print) -> Path:
    """The packaged model (image_classifier, version 1, seeded random weights), exported and
    packaged by the CLI in a subprocess the first time for these model sources, then cached
    as CACHE/resnet101-HASH.tar.gz (older ones removed)."""
    cache = cache or containerd.cache_dir() / "model-store"
    tarball = cache / f"resnet101-{model_sources_hash()}.tar.gz"
    if tarball.is_file():
        return tarball
    cache.mkdir(parents=True, exist_ok=True)
    cli = [sys.executable, "-m", "tooling.cli", "model"]
    progress(f"model store: exporting and packaging ResNet101 into {tarball} (once) …")
    with tempfile.TemporaryDirectory(dir=cache) as scratch:
        steps = [
            [*cli, "export", "--out", f"{scratch}/models", "--weights", "random", "--seed", "0"],
            [*cli, "package", f"{scratch}/models/image_classifier", "--out", f"{scratch}/m.tar.gz"],
        ]
        for step in steps:
            result = subprocess.run(
                step,
                cwd=paths.REPO_ROOT,
                capture_output=True,
                text=True,
                timeout=EXPORT_TIMEOUT_SECONDS,
                check=False,
            )
            if result.returncode != 0:
                tail = (result.stderr or result.stdout).strip().splitlines()[-1:]
                raise UserError(f"model store: `{' '.join(step[2:5])}` failed: {tail}")
        os.replace(f"{scratch}/m.tar.gz", tarball)
    for old in cache.glob("resnet101-*.tar.gz"):
        if old != tarball:
            old.unlink()
    return tarball


def issue_server_certificate(
    ca_cert: Path,
    ca_key: Path,
    cert_out: Path,
    key_out: Path,
    dns_names: tuple[str, ...] = DNS_NAMES,
    ips: tuple[str, ...] = (),
    tool: str | None = None,
) -> None:
    """Writes a server certificate for `dns_names` and `ips` signed by the CA, and its key
    (P-256, mode 0600): with `cryptography` when the venv has it and it reads the CA, else
    with the openssl CLI (`tool` forces one)."""
    tool = tool or ("cryptography" if importlib.util.find_spec("cryptography") else "openssl")
    key_out.touch(mode=0o600)
    if tool == "cryptography":
        try:
            cert_out.write_bytes(_sign_with_cryptography(ca_cert, ca_key, key_out, dns_names, ips))
            return
        except ValueError:  # a CA it refuses (kwokctl's has serial 0): openssl takes it
            pass
    _sign_with_openssl(ca_cert, ca_key, cert_out, key_out, dns_names, ips)


def _sign_with_cryptography(
    ca_cert: Path, ca_key: Path, key_out: Path, dns_names: tuple[str, ...], ips: tuple[str, ...]
) -> bytes:
    """The PEM certificate; writes its new key to `key_out`."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.utils import CryptographyDeprecationWarning
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    with warnings.catch_warnings():  # kwokctl's CA has serial 0, which RFC 5280 disallows
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        authority = x509.load_pem_x509_certificate(ca_cert.read_bytes())
    signer = serialization.load_pem_private_key(ca_key.read_bytes(), password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    names = [x509.DNSName(name) for name in dns_names]
    names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns_names[0])]))
        .issuer_name(authority.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=CERTIFICATE_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    try:  # the issuer's own identifier, whichever hash it was made with
        issuer_id = authority.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(issuer_id),
            critical=False,
        )
    except x509.ExtensionNotFound:
        pass
    certificate = builder.sign(signer, hashes.SHA256())  # type: ignore[arg-type]
    key_out.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return certificate.public_bytes(serialization.Encoding.PEM)


def _sign_with_openssl(
    ca_cert: Path,
    ca_key: Path,
    cert_out: Path,
    key_out: Path,
    dns_names: tuple[str, ...],
    ips: tuple[str, ...],
) -> None:
    """The same certificate and key with the openssl CLI."""
    sans = ",".join([*(f"DNS:{name}" for name in dns_names), *(f"IP:{ip}" for ip in ips)])
    extensions = (
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=serverAuth\n"
        f"subjectAltName={sans}\n"
        "subjectKeyIdentifier=hash\n"
        "authorityKeyIdentifier=keyid\n"
    )
    with tempfile.TemporaryDirectory() as scratch:
        request, extfile = Path(scratch) / "server.csr", Path(scratch) / "ext.cnf"
        extfile.write_text(extensions)
        serial = f"0x{secrets.token_hex(16)}"
        commands = [
            ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key_out],
            ["req", "-new", "-key", key_out, "-subj", f"/CN={dns_names[0]}", "-out", request],
            [
                *("x509", "-req", "-in", request, "-CA", ca_cert, "-CAkey", ca_key),
                *("-set_serial", serial, "-days", str(CERTIFICATE_DAYS), "-sha256"),
                *("-extfile", extfile, "-out", cert_out),
            ],
        ]
        for command in commands:
            result = subprocess.run(
                ["openssl", *map(str, command)], capture_output=True, text=True, check=False
            )
            if result.returncode != 0:
                raise UserError(
                    f"model store: openssl {command[0]} failed: {result.stderr.strip()[-300:]}"
                )


class ModelStore:
    """The model store's server process for cluster NAME, in the network namespace `netns`
    (None: this one), serving `tarball` at URL_PATH on `address`:`port` (0: any free port,
    `port` then says which once started). Its certificate, key and log live in `run_dir`,
    which `stop` removes."""

    def __init__(
        self,
        name: str,
        netns: Path | None,
        ca_cert: Path,
        ca_key: Path,
        tarball: Path,
        run_dir: Path,
        address: str = ADDRESS,
        port: int = PORT,
    ) -> None:
        self.name = name
        self.netns = netns
        self.ca_cert = ca_cert
        self.ca_key = ca_key
        self.tarball = tarball
        self.run_dir = run_dir
        self.address = address
        self.port = port
        self.process: subprocess.Popen | None = None

    @property
    def log(self) -> Path:
        return self.run_dir / "model-store.log"

    @property
    def cert(self) -> Path:
        return self.run_dir / "server.crt"

    def command(self) -> list[str]:
        return [
            *containerd.in_netns(self.netns),
            sys.executable,
            "-m",
            "tooling.node.model_store_server",
            f"--cert={self.cert}",
            f"--key={self.run_dir / 'server.key'}",
            f"--file={self.tarball}",
            f"--path={URL_PATH}",
            f"--address={self.address}",
            f"--port={self.port}",
        ]

    def start(self) -> None:
        """Issues the certificate and starts the server; returns once it listens."""
        if not self.tarball.is_file():
            raise UserError(f"model store: no tarball {self.tarball}")
        self.stop()  # a server an earlier run of this store left
        self.run_dir.mkdir(parents=True, exist_ok=True)
        issue_server_certificate(
            self.ca_cert, self.ca_key, self.cert, self.run_dir / "server.key", ips=(self.address,)
        )
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                self.command(),
                cwd=paths.REPO_ROOT,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            ready = re.search(rf"{READY_LINE} .* at https://[^ ]+:(\d+)/", self.log.read_text())
            if ready:
                self.port = int(ready.group(1))
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        said = self.log.read_text().strip().splitlines()[-1:] or ["nothing"]
        self.stop()
        raise UserError(
            f"model store {self.name}: the server did not start on {self.address}:{self.port} "
            f"within {START_TIMEOUT_SECONDS:.0f} s; it said: {said[0]}"
        )

    def stop(self) -> None:
        """Ends the server (SIGTERM, then SIGKILL), also one another process started (`cluster
        create` and `cluster delete` are two commands), and removes `run_dir`."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(STOP_TIMEOUT_SECONDS)
        self.process = None
        stop_processes(self.server_pids(), STOP_TIMEOUT_SECONDS)
        shutil.rmtree(self.run_dir, ignore_errors=True)

    def server_pids(self) -> list[int]:
        """Running processes of this store's server: the module, named with this run folder."""
        return [
            pid
            for pid, command in processes_naming(f"--cert={self.run_dir}")
            if "tooling.node.model_store_server" in command.split()
        ]

    def leftovers(self) -> list[str]:
        """What a stopped store would have left: a server process, its run folder."""
        found = [f"model store process {pid}" for pid in self.server_pids()]
        if self.run_dir.exists():
            found.append(f"folder {self.run_dir}")
        return found

    def __enter__(self) -> ModelStore:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


def model_store_objects(address: str = ADDRESS, port: int = PORT) -> list[dict]:
    """The Namespace, the selectorless Service and its EndpointSlice to the store on the node:
    kube-proxy takes MODEL_STORE_URI's Service address to `address`:`port`."""
    labels = {"app.kubernetes.io/name": SERVICE, "app.kubernetes.io/part-of": "resnet-serving"}
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": SERVICE, "namespace": NAMESPACE, "labels": labels},
            "spec": {
                "type": "ClusterIP",
                "ports": [{"name": "https", "port": PORT, "targetPort": port, "protocol": "TCP"}],
            },
        },
        {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": f"{SERVICE}-node",
                "namespace": NAMESPACE,
                "labels": {
                    **labels,
                    "kubernetes.io/service-name": SERVICE,
                    "endpointslice.kubernetes.io/managed-by": "resnet-serving",
                },
            },
            "addressType": "IPv4",
            "endpoints": [{"addresses": [address], "conditions": {"ready": True}}],
            "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
        },
    ]
