"""The chart's model-fetch init script, run for real with sh, curl and tar: an https tarball
from a local TLS server, an existing volume, and the readable failures a wrong model URI or
a wrong layout must give (the pod's termination message)."""

from __future__ import annotations

import functools
import http.server
import io
import os
import shutil
import ssl
import subprocess
import tarfile
import threading
from pathlib import Path

import pytest
from conftest import RESNET_CHART

SCRIPT = RESNET_CHART / "files" / "fetch-model.sh"


def run_fetch(uri: str, model_dir: Path, tmp_path: Path, **env: str) -> tuple[int, str, str]:
    """Runs the script as the init container does; returns (exit code, output, termination log)."""
    log = tmp_path / "termination-log"
    result = subprocess.run(
        ["/bin/sh", str(SCRIPT)],
        env={
            "PATH": os.environ["PATH"],
            "HOME": str(tmp_path),
            "TMPDIR": str(tmp_path),
            "MODEL_SOURCE_URI": uri,
            "MODEL_DIR": str(model_dir),
            "TERMINATION_LOG": str(log),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    message = log.read_text() if log.exists() else ""
    return result.returncode, result.stdout + result.stderr, message


def saved_model_tarball(layout: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, content in layout.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


@pytest.fixture(scope="module")
def https_server(tmp_path_factory):
    """A TLS file server on 127.0.0.1 with a self-signed certificate curl is told to trust."""
    root = tmp_path_factory.mktemp("https")
    served = root / "www"
    served.mkdir()
    cert, key = root / "cert.pem", root / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://localhost:{server.server_address[1]}", served, {"CURL_CA_BUNDLE": str(cert)}
    server.shutdown()


MODEL_FILES = {"1/saved_model.pb": b"graph", "1/variables/variables.index": b"index"}


@pytest.mark.parametrize("prefix", ["", "image_classifier/"], ids=["flat", "one-leading-dir"])
def test_https_tarball_is_fetched_into_the_served_layout(https_server, tmp_path, prefix):
    base, served, env = https_server
    (served / f"model-{len(prefix)}.tar.gz").write_bytes(
        saved_model_tarball({prefix + name: data for name, data in MODEL_FILES.items()})
    )
    model_dir = tmp_path / "models" / "image_classifier"
    code, output, _ = run_fetch(f"{base}/model-{len(prefix)}.tar.gz", model_dir, tmp_path, **env)
    assert code == 0, output
    assert "versions: 1" in output
    assert (model_dir / "1" / "saved_model.pb").read_bytes() == b"graph"
    assert (model_dir / "1" / "variables" / "variables.index").read_bytes() == b"index"


def test_missing_tarball_fails_with_the_url(https_server, tmp_path):
    base, _, env = https_server
    code, output, message = run_fetch(f"{base}/nope.tar.gz", tmp_path / "m", tmp_path, **env)
    assert code == 1
    assert f"could not download {base}/nope.tar.gz" in message
    assert "404" in output


def test_a_file_that_is_not_a_tarball_fails_clearly(https_server, tmp_path):
    base, served, env = https_server
    (served / "fake.tar.gz").write_text("<html>sign in</html>")
    code, _, message = run_fetch(f"{base}/fake.tar.gz", tmp_path / "m", tmp_path, **env)
    assert code == 1
    assert "is not a gzip-compressed tar archive" in message


def test_tarball_without_a_version_directory_fails_naming_the_layout(https_server, tmp_path):
    base, served, env = https_server
    (served / "flat.tar.gz").write_bytes(saved_model_tarball({"saved_model.pb": b"graph"}))
    code, _, message = run_fetch(f"{base}/flat.tar.gz", tmp_path / "m", tmp_path, **env)
    assert code == 1
    assert "expected a numeric version directory holding saved_model.pb" in message
    assert "found: saved_model.pb" in message


def test_existing_volume_is_checked_not_fetched(tmp_path):
    model_dir = tmp_path / "image_classifier"
    (model_dir / "3").mkdir(parents=True)
    (model_dir / "3" / "saved_model.pb").write_bytes(b"graph")
    (model_dir / "notes").mkdir()
    code, output, _ = run_fetch("", model_dir, tmp_path)
    assert code == 0, output
    assert "versions: 3" in output


def test_existing_volume_without_the_model_directory_fails(tmp_path):
    code, _, message = run_fetch("", tmp_path / "missing", tmp_path)
    assert code == 1
    assert "model.source.existingClaim" in message


@pytest.mark.parametrize("uri", ["s3://bucket/model", "ftp://host/model.tar.gz"])
def test_unsupported_scheme_fails_the_pod_with_what_to_use(uri, tmp_path):
    code, _, message = run_fetch(uri, tmp_path / "m", tmp_path)
    assert code == 1
    assert f"unsupported model URI '{uri}'" in message
    assert "gs://BUCKET/PATH" in message


def test_gcs_source_in_an_image_without_gcloud_says_which_value_to_change(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("mkdir", "basename", "ls", "head", "tr"):
        os.symlink(shutil.which(tool), bin_dir / tool)
    code, _, message = run_fetch("gs://bucket/model", tmp_path / "m", tmp_path, PATH=str(bin_dir))
    assert code == 1
    assert "model.fetcher.gcsImage" in message


# A double of `gcloud storage cp --recursive gs://…/* DEST/` (the remote API is Cloud Storage):
# it decides whether it runs on GCE as gcloud does, from $CLOUDSDK_CONFIG/gce when that file
# exists, else by asking the metadata server, which answers only from call METADATA_FROM on;
# it writes the answer there, and without GCE it has no credentials and fails.
GCLOUD_DOUBLE = """#!/bin/sh
calls=$(($(cat "$CALLS_FILE" 2>/dev/null || echo 0) + 1))
echo "$calls" > "$CALLS_FILE"
cache="$CLOUDSDK_CONFIG/gce"
if [ ! -f "$cache" ]; then
  on_gce=False
  if [ "$calls" -ge "$METADATA_FROM" ]; then on_gce=True; fi
  printf "$on_gce" > "$cache"
fi
if [ "$(cat "$cache")" != True ]; then
  echo "ERROR: (gcloud.storage.cp) You do not currently have an active account selected." >&2
  exit 1
fi
if [ -n "${DENIED:-}" ]; then
  echo "ERROR: (gcloud.storage.cp) HTTPError 403: caller does not have storage.objects.list" >&2
  exit 1
fi
cp -R "$BUCKET_DIR"/. "$5"
"""


@pytest.fixture
def gcloud_double(tmp_path):
    """PATH with the gcloud double first, a bucket holding one model version, and its env."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    gcloud = bin_dir / "gcloud"
    gcloud.write_text(GCLOUD_DOUBLE)
    gcloud.chmod(0o755)
    bucket = tmp_path / "bucket"
    (bucket / "1").mkdir(parents=True)
    (bucket / "1" / "saved_model.pb").write_bytes(b"graph")
    config = tmp_path / "gcloud-config"
    config.mkdir()
    env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "BUCKET_DIR": str(bucket),
        "CALLS_FILE": str(tmp_path / "calls"),
        "CLOUDSDK_CONFIG": str(config),
        "GCE_METADATA_RETRY_SECONDS": "0",
        "METADATA_FROM": "1",
    }
    return env, config / "gce", tmp_path / "calls"


def test_gcs_fetch_waits_for_the_metadata_server_clearing_gclouds_not_on_gce_cache(
    gcloud_double, tmp_path
):
    """The metadata server answers only from the third call: the first two write 'not on GCE'
    to gcloud's cache, which the script removes before each retry, saying why it waits."""
    env, _, calls = gcloud_double
    model_dir = tmp_path / "models" / "image_classifier"
    code, output, _ = run_fetch(
        "gs://bucket/resnet_101", model_dir, tmp_path, **{**env, "METADATA_FROM": "3"}
    )
    assert code == 0, output
    assert calls.read_text().strip() == "3"
    assert output.count("the GKE metadata server is not answering yet") == 2
    assert "attempt 3 of 12" in output
    assert (model_dir / "1" / "saved_model.pb").read_bytes() == b"graph"


def test_gcs_fetch_ignores_a_not_on_gce_cache_left_by_an_earlier_run(gcloud_double, tmp_path):
    """The pod's /tmp outlives a restarted init container, and its cache with it."""
    env, cache, calls = gcloud_double
    cache.write_text("False")
    code, output, _ = run_fetch("gs://bucket/resnet_101", tmp_path / "m", tmp_path, **env)
    assert code == 0, output
    assert calls.read_text().strip() == "1"


def test_gcs_fetch_gives_up_naming_the_metadata_server(gcloud_double, tmp_path):
    env, _, calls = gcloud_double
    env = {**env, "METADATA_FROM": "99", "GCE_METADATA_ATTEMPTS": "3"}
    code, _, message = run_fetch("gs://bucket/resnet_101", tmp_path / "m", tmp_path, **env)
    assert code == 1
    assert calls.read_text().strip() == "3"
    assert "GKE metadata server did not answer after 3 attempts" in message


def test_gcs_fetch_without_read_access_fails_at_once_naming_workload_identity(
    gcloud_double, tmp_path
):
    env, _, calls = gcloud_double
    code, _, message = run_fetch(
        "gs://bucket/resnet_101", tmp_path / "m", tmp_path, **{**env, "DENIED": "1"}
    )
    assert code == 1
    assert calls.read_text().strip() == "1"  # a refusal is not retried
    assert "Workload Identity" in message and "storage.objects.list" in message
