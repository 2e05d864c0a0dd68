"""The certificates KEDA's two processes use in the rehearsal, made locally with the openssl CLI
instead of KEDA's in-cluster rotation (which keeps them in a Secret for pods to mount).

One CA and one leaf in a folder as KEDA's `--cert-dir` expects (ca.crt, tls.crt, tls.key):
the operator serves its metrics gRPC with the leaf and asks for a client certificate the CA
signed; the metrics API server presents the same leaf as that client and serves the
aggregator with it, so the leaf is for both server and client auth. Its names are loopback's
and the Service name the aggregator checks (`NAME.NAMESPACE.svc`).
"""

from __future__ import annotations

import secrets
import subprocess
import tempfile
from pathlib import Path

from tooling.errors import UserError, one_line

DAYS = 30  # a rehearsal cluster lives hours; a new one gets new certificates


def openssl(*args: str) -> None:
    result = subprocess.run(["openssl", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise UserError(
            f"openssl {args[0]} failed making KEDA's certificates: {one_line(result.stderr)}"
        )


def write_certificates(folder: Path, dns_names: tuple[str, ...]) -> Path:
    """ca.crt, tls.crt and tls.key (P-256, mode 0600) in `folder`, unless all three are there;
    returns `folder`."""
    ca_cert, cert, key = folder / "ca.crt", folder / "tls.crt", folder / "tls.key"
    if ca_cert.is_file() and cert.is_file() and key.is_file():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    ca_key = folder / "ca.key"
    for secret in (ca_key, key):
        secret.unlink(missing_ok=True)
        secret.touch(mode=0o600)
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes")
    openssl(
        "req", "-x509", *ec, "-keyout", str(ca_key), "-out", str(ca_cert), "-days", str(DAYS),
        "-subj", "/CN=resnet-serving rehearsal KEDA CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    sans = ",".join(["IP:127.0.0.1", *(f"DNS:{name}" for name in dns_names)])
    with tempfile.TemporaryDirectory() as scratch:
        request, extensions = Path(scratch) / "tls.csr", Path(scratch) / "extensions.cnf"
        extensions.write_text(
            "basicConstraints=critical,CA:FALSE\n"
            "keyUsage=critical,digitalSignature,keyEncipherment\n"
            "extendedKeyUsage=serverAuth,clientAuth\n"
            f"subjectAltName={sans}\n"
        )
        openssl(
            "req", *ec, "-keyout", str(key), "-out", str(request), "-subj", f"/CN={dns_names[0]}"
        )
        openssl(
            "x509", "-req", "-in", str(request), "-CA", str(ca_cert), "-CAkey", str(ca_key),
            "-set_serial", f"0x{secrets.token_hex(8)}",
            "-days", str(DAYS), "-sha256", "-extfile", str(extensions), "-out", str(cert),
        )  # fmt: skip
    return folder
