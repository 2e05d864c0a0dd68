"""The one certificate maker: a self-signed CA when there is none, and leaf certificates a CA
signs for given DNS names, IP addresses and usages. Its callers: the node's model store (a
server certificate kwokctl's CA signs, so pods trust it through `kube-root-ca.crt`) and KEDA's
two processes in the rehearsal (one leaf for server and client auth, under a CA of their own).

Made with the openssl CLI, which signs with any CA key in PEM: kwokctl's CA is RSA 2048 with a
PKCS#1 key and serial 0. (The `cryptography` package is no dependency of this project, and it
loads a serial-0 certificate only with a warning that a later release will refuse it.)

Keys are P-256 (PKCS#8 PEM) and never readable by others: each is written with mode 0600.
Certificates are SHA-256, valid for `days` from now.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from tooling.errors import UserError, one_line

Usage = Literal["serverAuth", "clientAuth"]
SERVER_AUTH: Usage = "serverAuth"
CLIENT_AUTH: Usage = "clientAuth"
DAYS = 30  # the clusters that use them live hours; a new one gets new certificates

# openssl's config: an empty subject (-subj gives it) and the extensions of a CA or a leaf
REQUEST = "[req]\ndistinguished_name = subject\n[subject]\n"
CA_EXTENSIONS = """\
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
"""
LEAF_EXTENSIONS = """\
[leaf]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = {usages}
subjectAltName = {names}
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""


def make_ca(cert_out: Path, key_out: Path, common_name: str, days: int = DAYS) -> None:
    """Writes a self-signed CA certificate named `common_name` and its key (mode 0600)."""
    write_key(key_out)
    with tempfile.TemporaryDirectory() as scratch:
        config = Path(scratch) / "openssl.cnf"
        config.write_text(REQUEST + CA_EXTENSIONS)
        openssl(
            "req", "-new", "-x509", "-key", key_out, "-subj", f"/CN={common_name}",
            "-set_serial", serial(), "-days", str(days), "-sha256",
            "-config", config, "-extensions", "ca", "-out", cert_out,
            making=cert_out,
        )  # fmt: skip


def issue_certificate(
    ca_cert: Path,
    ca_key: Path,
    cert_out: Path,
    key_out: Path,
    dns_names: Sequence[str],
    ips: Sequence[str] = (),
    usages: Sequence[Usage] = (SERVER_AUTH,),
    days: int = DAYS,
) -> None:
    """Writes a certificate for `dns_names` and `ips` (its subject the first of them) with the
    extended key `usages`, signed by the CA, and its new key (mode 0600)."""
    names = [*(f"DNS:{name}" for name in dns_names), *(f"IP:{ip}" for ip in ips)]
    if not names or not usages:
        raise ValueError("a certificate needs a name and a usage")
    write_key(key_out)
    with tempfile.TemporaryDirectory() as scratch:
        config, request = Path(scratch) / "openssl.cnf", Path(scratch) / "leaf.csr"
        config.write_text(
            REQUEST + LEAF_EXTENSIONS.format(usages=",".join(usages), names=",".join(names))
        )
        subject = f"/CN={(*dns_names, *ips)[0]}"
        openssl(
            "req", "-new", "-key", key_out, "-subj", subject, "-config", config, "-out", request,
            making=cert_out,
        )  # fmt: skip
        openssl(
            "x509", "-req", "-in", request, "-CA", ca_cert, "-CAkey", ca_key,
            "-set_serial", serial(), "-days", str(days), "-sha256",
            "-extfile", config, "-extensions", "leaf", "-out", cert_out,
            making=cert_out,
        )  # fmt: skip


def write_key(key_out: Path) -> None:
    """A new P-256 key in `key_out`, a new file with mode 0600 from its first byte."""
    key = openssl(
        "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", making=key_out
    )
    key_out.unlink(missing_ok=True)
    descriptor = os.open(key_out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(key)
    key_out.chmod(0o600)  # whatever the umask


def serial() -> str:
    """A random positive serial number (128 bits), as RFC 5280 asks."""
    return f"0x{secrets.token_hex(16)}"


def openssl(*args: str | Path, making: Path) -> str:
    """openssl's output; a failure (or no openssl) is a UserError naming the file it made."""
    try:
        result = subprocess.run(
            ["openssl", *map(str, args)], capture_output=True, text=True, check=False
        )
    except FileNotFoundError:
        raise UserError(
            f"no openssl to make {making}: install it (e.g. `apt-get install openssl`)"
        ) from None
    if result.returncode != 0:
        raise UserError(f"openssl {args[0]} failed making {making}: {one_line(result.stderr)}")
    return result.stdout
