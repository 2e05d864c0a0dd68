"""What the release scales on, read from its values as helm merges them: CPU (the chart's HPA on
metrics-server) or TF Serving's request metrics (`autoscaling.metric: requests`: KEDA mode, a
ScaledObject whose HPA KEDA makes, or plain HPA mode, a custom-metrics adapter's Pods metric).
A run names it in its progress lines, run.json and summary, beside the node autoscaler."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import yaml

from tooling import paths
from tooling.errors import UserError
from tooling.names import RELEASE

CHART_VALUES = paths.CHARTS_DIR / "resnet-serving" / "values.yaml"
SIGNALS = {
    "concurrency": "concurrency (mean requests in the servers)",
    "rate": "request rate (requests/s)",
}


def merged(values: Iterable[dict]) -> dict:
    """Values maps merged as helm merges them over the chart's values.yaml: maps key by key,
    later ones win, and a null removes the key."""

    def merge(base: dict, override: dict) -> dict:
        out = dict(base)
        for key, value in override.items():
            if value is None:
                out.pop(key, None)
            elif isinstance(value, dict) and isinstance(out.get(key), dict):
                out[key] = merge(out[key], value)
            else:
                out[key] = value
        return out

    result = yaml.safe_load(CHART_VALUES.read_text()) or {}
    for override in values:
        result = merge(result, override or {})
    return result


@dataclass(frozen=True)
class RequestScaling:
    """What the release's values ask of request-driven autoscaling."""

    signal: str  # concurrency or rate
    target_per_replica: float
    window: str
    keda: bool  # KEDA mode (a ScaledObject)
    pods_metric: bool  # plain HPA mode (a custom-metrics adapter's Pods metric)
    pods_metric_name: str = ""


def request_scaling(values: dict) -> RequestScaling | None:
    """The request-driven mode the merged values ask for; None when they scale on CPU (or
    not at all)."""
    autoscaling = values.get("autoscaling") or {}
    if not autoscaling.get("enabled") or autoscaling.get("metric", "cpu") != "requests":
        return None
    requests = autoscaling.get("requests") or {}
    pods_metric = requests.get("podsMetric") or {}
    return RequestScaling(
        signal=str(requests.get("signal", "concurrency")),
        target_per_replica=float(requests.get("targetPerReplica", 0)),
        window=str(requests.get("window", "")),
        keda=bool((requests.get("keda") or {}).get("enabled")),
        pods_metric=bool(pods_metric.get("enabled")),
        pods_metric_name=str(pods_metric.get("name", "")),
    )


def describe(values: dict) -> str:
    """The signal in one line, from the merged values alone (a cluster that says nothing more
    of the components that carry it)."""
    autoscaling = values.get("autoscaling") or {}
    if not autoscaling.get("enabled"):
        return "none (autoscaling off)"
    scaling = request_scaling(values)
    if scaling is None:
        targets = [f"CPU {autoscaling.get('targetCPUUtilizationPercentage')} %"]
        if autoscaling.get("targetMemoryUtilizationPercentage"):
            targets.append(f"memory {autoscaling['targetMemoryUtilizationPercentage']} %")
        return f"{' and '.join(targets)} of requests (metrics-server → the chart's HPA)"
    target = f"target {scaling.target_per_replica:g} per replica"
    if scaling.keda:
        address = (autoscaling.get("requests") or {}).get("keda", {}).get("serverAddress")
        return (
            f"requests: {SIGNALS.get(scaling.signal, scaling.signal)}, {target}, over "
            f"{scaling.window} (KEDA ScaledObject, Prometheus at {address or '?'})"
        )
    return (
        f"requests: the Pods metric {scaling.pods_metric_name}, {target} (a custom-metrics "
        "adapter → the chart's HPA)"
    )


def keda_server_address(url: str) -> dict:
    """The values that point the chart's ScaledObject at a Prometheus."""
    return {"autoscaling": {"requests": {"keda": {"serverAddress": url}}}}


def rendered_server_chart(values: Iterable[dict], namespace: str) -> list[dict]:
    """charts/resnet-serving rendered for these values (`helm template`, real helm)."""
    import asyncio

    from pyhelm3 import Client

    async def render() -> list[dict]:
        helm = Client(executable=str(paths.tool("helm")))
        chart = await helm.get_chart(paths.CHARTS_DIR / "resnet-serving")
        objects = await helm.template_resources(chart, RELEASE, *values, namespace=namespace)
        return [manifest for manifest in objects if manifest]

    try:
        return asyncio.run(render())
    except Exception as error:  # pyhelm3's errors: the values the chart refuses
        raise UserError(f"helm could not render charts/resnet-serving: {error}") from error


def prometheus_trigger(objects: list[dict]) -> dict:
    """The rendered ScaledObject's prometheus trigger metadata (serverAddress, query,
    threshold): what KEDA will ask Prometheus."""
    for manifest in objects:
        if manifest.get("kind") == "ScaledObject":
            for trigger in manifest["spec"].get("triggers") or []:
                if trigger.get("type") == "prometheus":
                    return dict(trigger["metadata"])
    raise UserError(
        "the values ask for KEDA mode but charts/resnet-serving renders no ScaledObject with a "
        "prometheus trigger"
    )
