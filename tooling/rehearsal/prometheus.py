"""The real Prometheus in the rehearsal (`make setup-rehearsal` builds it with kubernetes_sd only),
run as one more control-plane process of the cluster: its pid file and log sit with kwokctl's
own (tooling.rehearsal.components), its configuration and data in the cluster's folder, and
deleting the cluster stops it. It listens on a free loopback port; its web UI's assets are not
in the module build, so / shows none, and the HTTP API answers as in a release.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import yaml

from tooling import paths
from tooling.errors import UserError, one_line
from tooling.loadgen.run import free_port
from tooling.rehearsal import components
from tooling.waiting import wait_until_ready

BINARY = "prometheus"
COMPONENT = "prometheus"
READY_TIMEOUT_SECONDS = 60.0
QUERY_TIMEOUT_SECONDS = 5.0


def binary() -> Path | None:
    """The built Prometheus, or None before `make setup-rehearsal`."""
    path = paths.tools_bin() / BINARY
    return path if os.access(path, os.X_OK) else None


def version() -> str:
    """The pinned module version (v0.3xx.y is Prometheus 3.xx.y)."""
    return paths.pinned_versions()["PROMETHEUS_VERSION"]


def folder(cluster_name: str) -> Path:
    """Its configuration and TSDB, in the cluster's folder (removed with the cluster)."""
    return components.cluster_workdir(cluster_name) / "prometheus"


def command(config_file: Path, data: Path, port: int) -> list[str]:
    flags = {
        "config.file": str(config_file),
        "storage.tsdb.path": str(data),
        "storage.tsdb.retention.time": "1d",  # a rehearsal lasts minutes
        "web.listen-address": f"127.0.0.1:{port}",
        "log.level": "info",
    }
    return [str(binary()), *(f"--{key}={value}" for key, value in flags.items())]


def start_prometheus(cluster_name: str, config: dict) -> str:
    """Writes `config` (prometheus.yml as a dict) and starts Prometheus for the cluster (again,
    if one runs already: the configuration may have changed); returns its URL once /-/ready
    answers."""
    if binary() is None:
        raise UserError(
            f"{BINARY} is not installed in {paths.tools_bin()}: run `make setup-rehearsal`"
        )
    components.stop(cluster_name, COMPONENT)
    home = folder(cluster_name)
    home.mkdir(parents=True, exist_ok=True)
    config_file = home / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(config, sort_keys=False))
    port = free_port()
    process = components.start(
        cluster_name, COMPONENT, command(config_file, home / "data", port), dict(os.environ)
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(
            "Prometheus",
            "/-/ready to answer",
            lambda: ready(url),
            running=lambda: process is None or process.poll() is None,
            log=components.log_file(cluster_name, COMPONENT),
            timeout=READY_TIMEOUT_SECONDS,
        )
    except UserError:
        components.stop(cluster_name, COMPONENT)
        raise
    return url


def ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def instant_query(url: str, promql: str) -> float | None:
    """The value of an instant query: a scalar, or the one series of a vector; None when the
    vector is empty (nothing scraped yet) or the value is NaN. A vector of several series is
    an error (aggregate it, e.g. with sum())."""
    query = urllib.parse.urlencode({"query": promql})
    try:
        with urllib.request.urlopen(
            f"{url}/api/v1/query?{query}", timeout=QUERY_TIMEOUT_SECONDS
        ) as response:
            body = json.load(response)
    except urllib.error.HTTPError as error:  # 400: a bad query, its reason in the body
        reason = one_line(error.read().decode(errors="replace"), 200)
        raise UserError(f"Prometheus refused the query {promql!r}: {reason}") from None
    except (urllib.error.URLError, OSError) as error:
        raise UserError(f"Prometheus at {url} does not answer: {one_line(error, 200)}") from None
    data = body["data"]
    if data["resultType"] == "scalar":
        value = data["result"][1]
    elif data["resultType"] == "vector":
        series = data["result"]
        if not series:
            return None
        if len(series) > 1:
            raise UserError(
                f"the query {promql!r} returned {len(series)} series, not one: aggregate it "
                "(e.g. sum(...))"
            )
        value = series[0]["value"][1]
    else:
        raise UserError(f"the query {promql!r} returned a {data['resultType']}, not a number")
    number = float(value)
    return None if number != number else number  # NaN: no samples in the window
