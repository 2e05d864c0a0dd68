"""The certificates KEDA's two processes use in the rehearsal, made locally
(`tooling.certificates`) instead of KEDA's in-cluster rotation (which keeps them in a Secret for
pods to mount).

One CA and one leaf in a folder as KEDA's `--cert-dir` expects (ca.crt, tls.crt, tls.key):
the operator serves its metrics gRPC with the leaf and asks for a client certificate the CA
signed; the metrics API server presents the same leaf as that client and serves the
aggregator with it, so the leaf is for both server and client auth. Its names are loopback's
and the Service name the aggregator checks (`NAME.NAMESPACE.svc`).
"""

from __future__ import annotations

from pathlib import Path

from tooling import certificates


def write_certificates(folder: Path, dns_names: tuple[str, ...]) -> Path:
    """ca.crt, tls.crt and tls.key (P-256, mode 0600; the CA's key in ca.key) in `folder`,
    unless all three are there; returns `folder`."""
    ca_cert, cert, key = folder / "ca.crt", folder / "tls.crt", folder / "tls.key"
    if ca_cert.is_file() and cert.is_file() and key.is_file():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    ca_key = folder / "ca.key"
    certificates.make_ca(ca_cert, ca_key, "resnet-serving rehearsal KEDA CA")
    certificates.issue_certificate(
        ca_cert,
        ca_key,
        cert,
        key,
        dns_names,
        ips=("127.0.0.1",),
        usages=(certificates.SERVER_AUTH, certificates.CLIENT_AUTH),
    )
    return folder
