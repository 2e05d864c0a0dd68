"""KEDA on GKE: its Helm chart (kedacore/keda, the version pinned in hack/versions.env) installed
into namespace `keda` before the release, when the release's values ask for KEDA mode
(`autoscaling.metric: requests` with `autoscaling.requests.keda.enabled`), and where KEDA's
Prometheus trigger reads: Google Cloud Managed Service for Prometheus (tooling.gke.
managed_prometheus) or a Prometheus already in the cluster, at the URL the user gives.

The chart's defaults run KEDA's operator, its metrics API server (the APIService
v1beta1.external.metrics.k8s.io the HPA reads) and its admission webhooks; nothing else is set.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from pathlib import Path

from tooling import paths, releases
from tooling.console import Say
from tooling.errors import UserError, cluster_unreachable, one_line
from tooling.runs import scaling_signal

CHART_REPO = "https://kedacore.github.io/charts"
CHART = "keda"
RELEASE_NAME = "keda"
NAMESPACE = "keda"
GMP = "gmp"
URL_PATTERN = re.compile(r"^https?://[^\s/]+(/\S*)?$")
NEEDS_PROMETHEUS = (
    "KEDA mode (autoscaling.requests.keda.enabled) needs a Prometheus to query: pass "
    "--prometheus gmp (Google Cloud Managed Service for Prometheus) or --prometheus "
    "http://PROMETHEUS.NAMESPACE.svc:9090 (one in the cluster)"
)


def chart_version() -> str:
    return paths.pinned_versions()["KEDA_CHART_VERSION"]


@dataclass(frozen=True)
class KedaChart:
    """The chart `up` installs: where it comes from, which version, into which namespace."""

    repo: str = CHART_REPO
    name: str = CHART
    version: str = ""  # "" = KEDA_CHART_VERSION
    namespace: str = NAMESPACE
    release: str = RELEASE_NAME

    @property
    def pinned(self) -> str:
        return self.version or chart_version()

    def describe(self) -> str:
        return (
            f"helm chart {self.name} {self.pinned} from {self.repo}, release {self.release} in "
            f"namespace {self.namespace} (created), the chart's defaults: KEDA's operator, "
            "metrics API server (external.metrics.k8s.io) and admission webhooks"
        )


def prometheus_choice(values: list[dict], prometheus: str) -> str:
    """Where KEDA's trigger reads, for values that ask for KEDA mode: `gmp`, or a URL (the
    --prometheus given, else the values' own serverAddress); "" when the values do not ask for
    KEDA mode. Refuses, in one line and before anything is made, what cannot work."""
    merged = scaling_signal.merged(values)
    scaling = scaling_signal.request_scaling(merged)
    if scaling is None or not scaling.keda:
        if prometheus:
            raise UserError(
                f"--prometheus {prometheus} is for KEDA mode: give values with "
                "autoscaling.metric: requests and autoscaling.requests.keda.enabled: true "
                "(e.g. --values charts/resnet-serving/ci/requests-values.yaml)"
            )
        return ""
    if prometheus == GMP:
        return GMP
    if prometheus:
        if not URL_PATTERN.match(prometheus):
            raise UserError(
                f"--prometheus {prometheus!r}: use gmp or Prometheus' URL in the cluster, "
                "e.g. http://prometheus.monitoring.svc:9090"
            )
        return prometheus
    address = ((merged["autoscaling"].get("requests") or {}).get("keda") or {}).get("serverAddress")
    if not address:
        raise UserError(NEEDS_PROMETHEUS)
    return str(address)


def install(kubeconfig: Path, chart: KedaChart, say: Say) -> None:
    """`helm upgrade --install keda keda --repo … --version … --namespace keda
    --create-namespace --wait` through pyhelm3 (real helm against the cluster)."""

    async def go() -> object:
        client = releases.helm_client(kubeconfig)
        loaded = await client.get_chart(chart.name, repo=chart.repo, version=chart.pinned)
        return await client.install_or_upgrade_release(
            chart.release, loaded, namespace=chart.namespace, create_namespace=True, wait=True
        )

    say(f"gke: installing KEDA ({chart.name} chart {chart.pinned}, namespace {chart.namespace}) …")
    try:
        asyncio.run(go())
    except Exception as error:
        raise keda_error(kubeconfig, chart, error) from error
    say(f"gke: ✓ KEDA {chart.pinned} installed (namespace {chart.namespace})")


def fetch(chart: KedaChart) -> dict:
    """The chart's metadata as helm reads it from the repository (`helm show chart`): proves
    the repository answers with that chart and version."""
    from pyhelm3 import Client

    async def go() -> dict:
        client = Client(executable=str(paths.tool("helm")))
        loaded = await client.get_chart(chart.name, repo=chart.repo, version=chart.pinned)
        return loaded.metadata.model_dump()

    try:
        return asyncio.run(go())
    except Exception as error:
        raise keda_error(None, chart, error) from error


def keda_error(kubeconfig: Path | None, chart: KedaChart, error: Exception) -> Exception:
    from pyhelm3.errors import ConnectionError as HelmConnectionError
    from pyhelm3.errors import Error as HelmError

    if kubeconfig is not None and isinstance(error, HelmConnectionError):
        return cluster_unreachable(kubeconfig, error)
    if isinstance(error, HelmError):
        return UserError(
            f"helm could not get or install the {chart.name} chart {chart.pinned} from "
            f"{chart.repo}: {one_line(error)} (is the repository reachable from here, and does "
            "it have that version? KEDA_CHART_VERSION in hack/versions.env)"
        )
    return error
