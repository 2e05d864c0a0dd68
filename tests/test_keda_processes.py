"""Prometheus and KEDA for the rehearsal, without a cluster: setup's fallback when the module
proxy serves neither module, the cached builds linked without one, and the certificates
KEDA's processes share. (Both running on a rehearsal cluster, scaling a release and stopped
with it: tests/test_request_autoscaling_rehearsal.py.)"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tooling import paths
from tooling.rehearsal import keda, keda_certs, prometheus

SCRIPT = paths.REPO_ROOT / "hack" / "install-request-autoscaling.sh"


# Setup's fallback and cache, with no module proxy.


def install(tmp_path: Path) -> subprocess.CompletedProcess:
    """The script with its own cache and tools folders and no module proxy (an empty module
    cache, GOPROXY=off): only cached builds can be linked."""
    env = {
        **os.environ,
        "GOPROXY": "off",
        "GOMODCACHE": str(tmp_path / "gomodcache"),
        "RESNET_SERVING_CACHE": str(tmp_path / "cache"),
        "RESNET_SERVING_TOOLS": str(tmp_path / "tools" / "bin"),
    }
    return subprocess.run(
        ["bash", str(SCRIPT)], env=env, capture_output=True, text=True, check=True, timeout=120
    )


def test_without_the_modules_setup_says_in_one_line_that_keda_mode_is_off(tmp_path):
    result = install(tmp_path)
    lines = [line for line in result.stdout.splitlines() if "request autoscaling" in line]
    assert len(lines) == 1, result.stdout
    versions = paths.pinned_versions()
    assert f"github.com/kedacore/keda/v2@{versions['KEDA_VERSION']}" in lines[0]
    assert f"github.com/prometheus/prometheus@{versions['PROMETHEUS_VERSION']}" in lines[0]
    assert "without KEDA mode" in lines[0] and "make setup-rehearsal" in lines[0]
    assert not list((tmp_path / "tools" / "bin").iterdir())
    assert not (tmp_path / "tools" / "keda-crds").exists()


def test_cached_builds_are_linked_without_their_source(tmp_path, monkeypatch):
    versions = paths.pinned_versions()
    tools = tmp_path / "cache" / "tools"
    built = {
        "prometheus": tools / f"prometheus-{versions['PROMETHEUS_VERSION']}" / "prometheus",
        "keda-operator": tools / f"keda-operator-{versions['KEDA_VERSION']}" / "keda-operator",
        "keda-adapter": tools / f"keda-operator-{versions['KEDA_VERSION']}" / "keda-adapter",
    }
    for binary in built.values():
        binary.parent.mkdir(parents=True, exist_ok=True)
        binary.write_text("#!/bin/sh\n")
        binary.chmod(0o755)
    crds = built["keda-operator"].parent / "crds"
    crds.mkdir()
    (crds / "keda.sh_scaledobjects.yaml").write_text("{}\n")
    result = install(tmp_path)
    assert "request autoscaling" not in result.stdout
    bin_dir = tmp_path / "tools" / "bin"
    for name, binary in built.items():
        assert (bin_dir / name).resolve() == binary
    assert (tmp_path / "tools" / "keda-crds").resolve() == crds
    monkeypatch.setenv("RESNET_SERVING_TOOLS", str(bin_dir))
    assert keda.missing_parts() == []


def test_missing_parts_name_what_setup_did_not_build(tmp_path, monkeypatch):
    monkeypatch.setenv("RESNET_SERVING_TOOLS", str(tmp_path / "bin"))
    missing = keda.missing_parts()
    assert missing[:3] == ["prometheus", "keda-operator", "keda-adapter"]
    assert "CRDs" in missing[3]
    assert prometheus.binary() is None
    versions = paths.pinned_versions()
    assert keda.describe() == (
        f"KEDA {versions['KEDA_VERSION']} (operator + metrics API server), "
        f"Prometheus {versions['PROMETHEUS_VERSION']}"
    )


def test_the_certificates_serve_and_authenticate_both_ends(tmp_path):
    """One leaf the CA signed, for server and client auth, named for loopback and the
    Service the aggregator checks; its key readable by its owner only."""
    folder = keda_certs.write_certificates(tmp_path / "certs", ("svc.ns.svc",))
    ca, leaf = folder / "ca.crt", folder / "tls.crt"
    for purpose in ("sslserver", "sslclient"):
        verified = subprocess.run(
            ["openssl", "verify", "-purpose", purpose, "-CAfile", str(ca), str(leaf)],
            capture_output=True,
            text=True,
        )
        assert verified.returncode == 0, verified.stdout + verified.stderr
    text = subprocess.run(
        ["openssl", "x509", "-in", str(leaf), "-noout", "-ext", "subjectAltName"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "IP Address:127.0.0.1" in text and "DNS:svc.ns.svc" in text
    assert (folder / "tls.key").stat().st_mode & 0o077 == 0
    before = leaf.read_bytes()
    keda_certs.write_certificates(folder, ("svc.ns.svc",))  # kept when all three are there
    assert leaf.read_bytes() == before
