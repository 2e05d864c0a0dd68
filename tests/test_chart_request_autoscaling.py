"""The resnet-serving chart's request-driven autoscaling (`autoscaling.metric: requests`): KEDA
mode renders a ScaledObject valid against KEDA's own CRD and no HPA; plain HPA mode renders
an HPA with one `Pods` metric; the default stays the CPU HPA; bad values fail naming the key."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import helm_cli as helm
import jsonschema
import kubernetes_validate
import pytest
import yaml
from conftest import RESNET_CHART, deep_merge, objects_of

from tooling import paths

GCS = {"model": {"source": {"uri": "gs://bucket/resnet_101"}}}
REQUESTS_VALUES = RESNET_CHART / "ci" / "requests-values.yaml"
PODS_METRIC_VALUES = RESNET_CHART / "ci" / "pods-metric-values.yaml"
KEDA = {
    "autoscaling": {
        "metric": "requests",
        "requests": {"keda": {"enabled": True, "serverAddress": "http://prometheus.mon:9090"}},
    }
}
PODS = {"autoscaling": {"metric": "requests", "requests": {"podsMetric": {"enabled": True}}}}
RELEASE, NAMESPACE = "rs", "serving"
FULLNAME = f"{RELEASE}-resnet-serving"
SELECTOR = f'namespace="{NAMESPACE}", pod=~"{FULLNAME}-[a-z0-9]+-[a-z0-9]+"'
CRD_DIR = paths.tools_bin().parent / "keda-crds"  # helper links KEDA's module CRDs here


def defaults() -> dict:
    return yaml.safe_load((RESNET_CHART / "values.yaml").read_text())


def render(tmp_path: Path, *values: dict, files: tuple[Path, ...] = ()) -> tuple[dict, ...]:
    """`helm template` with the values files, then `values` laid over them in one more file."""
    extra = tmp_path / "extra-values.yaml"
    merged: dict = {}
    for layer in values:
        merged = deep_merge(merged, layer)
    extra.write_text(yaml.safe_dump(merged))
    return tuple(
        helm.Helm.pinned().template(
            RESNET_CHART, [*files, extra], release=RELEASE, namespace=NAMESPACE
        )
    )


def deployment_name(objects: tuple[dict, ...]) -> str:
    (server,) = [
        obj for obj in objects_of(objects, "Deployment") if obj["metadata"]["name"] == FULLNAME
    ]
    return server["metadata"]["name"]


def assert_valid_kubernetes(obj: dict) -> None:
    kubernetes_validate.validate(obj, kubernetes_validate.latest_version(), strict=True)


# --- the default: CPU, as before ---------------------------------------------------------


def test_the_default_is_the_cpu_hpa_and_no_scaled_object(tmp_path):
    objects = render(tmp_path, GCS)
    assert objects_of(objects, "ScaledObject") == []
    (hpa,) = objects_of(objects, "HorizontalPodAutoscaler")
    assert hpa["spec"] == {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": FULLNAME},
        "minReplicas": 1,
        "maxReplicas": 6,
        "metrics": [
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": 60},
                },
            }
        ],
    }
    assert defaults()["autoscaling"]["metric"] == "cpu"


def test_in_cpu_mode_the_request_values_change_nothing(tmp_path):
    """Every autoscaling.requests value but the two mode switches is ignored with metric cpu:
    the rendering is byte for byte the default's."""
    changed = {
        "autoscaling": {
            "requests": {
                "signal": "rate",
                "targetPerReplica": 9,
                "window": "1m",
                "query": "sum(up)",
                "keda": {"serverAddress": "http://p:9090", "minReplicaCount": 0},
                "podsMetric": {"name": "other"},
            }
        }
    }
    assert render(tmp_path, GCS, changed) == render(tmp_path, GCS)


# --- KEDA mode -----------------------------------------------------------------------------


def test_keda_mode_renders_a_scaled_object_and_no_hpa(tmp_path):
    objects = render(tmp_path, files=(REQUESTS_VALUES,))
    assert objects_of(objects, "HorizontalPodAutoscaler") == [], "KEDA owns the HPA"
    (scaled,) = objects_of(objects, "ScaledObject")
    values = deep_merge(defaults(), yaml.safe_load(REQUESTS_VALUES.read_text()))
    requests = values["autoscaling"]["requests"]
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    assert scaled["metadata"]["name"] == deployment_name(objects)
    spec = scaled["spec"]
    assert spec["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": FULLNAME,
    }
    assert spec["minReplicaCount"] == values["autoscaling"]["minReplicas"]
    assert spec["maxReplicaCount"] == values["autoscaling"]["maxReplicas"]
    assert spec["pollingInterval"] == requests["keda"]["pollingInterval"]
    assert spec["cooldownPeriod"] == requests["keda"]["cooldownPeriod"]
    (trigger,) = spec["triggers"]
    assert trigger == {
        "type": "prometheus",
        "metricType": "AverageValue",
        "metadata": {
            "serverAddress": requests["keda"]["serverAddress"],
            "query": (
                f"sum(rate(:tensorflow:serving:request_latency_sum{{{SELECTOR}}}[30s])) / 1e6"
            ),
            "threshold": str(requests["targetPerReplica"]),
        },
    }
    assert requests["signal"] == "concurrency"


def test_keda_gets_the_behavior_the_hpa_would_have(tmp_path):
    """The ScaledObject's HPA behavior is the chart's HPA's for the same values: the preset,
    or an explicit behavior, which wins."""
    for layer in (
        {"autoscaling": {"behaviorPreset": "responsive"}},
        {
            "autoscaling": {
                "behaviorPreset": "conservative",
                "behavior": {"scaleDown": {"stabilizationWindowSeconds": 42}},
            }
        },
    ):
        (hpa,) = objects_of(render(tmp_path, GCS, layer), "HorizontalPodAutoscaler")
        (scaled,) = objects_of(render(tmp_path, GCS, layer, KEDA), "ScaledObject")
        config = scaled["spec"]["advanced"]["horizontalPodAutoscalerConfig"]
        assert config["behavior"] == hpa["spec"]["behavior"]
    (scaled,) = objects_of(render(tmp_path, GCS, KEDA), "ScaledObject")
    assert "advanced" not in scaled["spec"], "no behavior: the HPA's defaults"


@pytest.mark.parametrize(
    ("requests", "query"),
    [
        ({"signal": "rate"}, f"sum(rate(:tensorflow:serving:request_count{{{SELECTOR}}}[30s]))"),
        (
            {"window": "1m"},
            f"sum(rate(:tensorflow:serving:request_latency_sum{{{SELECTOR}}}[1m])) / 1e6",
        ),
        ({"query": 'sum(rate(nginx_requests_total{app="x"}[1m]))'}, None),
    ],
    ids=["rate", "window", "own-query"],
)
def test_the_query_follows_signal_window_or_the_override(requests, query, tmp_path):
    layer = {"autoscaling": {"requests": {**requests, "targetPerReplica": 2.5}}}
    (scaled,) = objects_of(render(tmp_path, GCS, KEDA, layer), "ScaledObject")
    metadata = scaled["spec"]["triggers"][0]["metadata"]
    assert metadata["query"] == (query or requests["query"])
    assert metadata["threshold"] == "2.5"


def test_the_query_selects_the_releases_server_pods_only():
    """Prometheus anchors `=~`; a Deployment's pods are NAME-<hash>-<suffix>."""
    pattern = re.compile(f"{FULLNAME}-[a-z0-9]+-[a-z0-9]+")
    assert pattern.fullmatch(f"{FULLNAME}-7d9f8b6c5d-x2x9k")
    assert not pattern.fullmatch(f"{FULLNAME}-overprovisioning-7d9f8b6c5d-x2x9k")
    assert not pattern.fullmatch(f"other-{FULLNAME}-7d9f8b6c5d-x2x9k")


@pytest.mark.parametrize(("minimum", "expected"), [(None, 2), (0, 0), (3, 3)])
def test_min_replica_count_defaults_to_min_replicas_and_may_be_zero(minimum, expected, tmp_path):
    layer = {"autoscaling": {"minReplicas": 2, "requests": {"keda": {"minReplicaCount": minimum}}}}
    (scaled,) = objects_of(render(tmp_path, GCS, KEDA, layer), "ScaledObject")
    assert scaled["spec"]["minReplicaCount"] == expected


def test_notes_name_the_signal_that_scales_the_release():
    def notes(*set_values: str) -> str:
        args = ["install", RELEASE, str(RESNET_CHART), "--dry-run=client", "-n", NAMESPACE]
        args += ["--set", "model.source.uri=gs://bucket/resnet_101"]
        for value in set_values:
            args += ["--set", value]
        return helm.Helm.pinned().run(*args).split("NOTES:", 1)[1]

    keda = (
        "autoscaling.metric=requests",
        "autoscaling.requests.keda.enabled=true",
        "autoscaling.requests.keda.serverAddress=http://prometheus.mon:9090",
    )
    text = notes(*keda)
    assert "KEDA's ScaledObject" in text and "concurrency" in text
    assert f"keda-hpa-{FULLNAME}" in text and "http://prometheus.mon:9090" in text
    assert "request_latency_sum" in text and "CPU request" not in text
    cold = notes(*keda, "autoscaling.requests.keda.minReplicaCount=0")
    assert "cold" not in text and "minReplicaCount is 0" in cold
    assert "never wakes" in cold and "WARNING" not in cold
    pods = notes("autoscaling.metric=requests", "autoscaling.requests.podsMetric.enabled=true")
    assert "Pods metric tensorflow_serving_concurrency" in pods and "KEDA" not in pods
    assert "60 % of the 1500m CPU request" in notes()


def strict(schema: object) -> object:
    """The CRD's schema with unknown fields refused, as the API server's strict field
    validation refuses them (it prunes them otherwise), except where the CRD preserves them."""
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: strict(value) for key, value in schema.items()}
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def scaled_object_schema() -> dict:
    """openAPIV3Schema of ScaledObject v1alpha1 from KEDA's CRDs (github.com/kedacore/keda/v2
    v2.21.0, config/crd/bases), which `make setup-rehearsal` links into .tools/keda-crds."""
    if not CRD_DIR.is_dir():
        pytest.skip("KEDA's CRDs are not installed: run `make setup-rehearsal`")
    for path in sorted(CRD_DIR.glob("*.yaml")):
        for crd in yaml.safe_load_all(path.read_text()):
            if crd and crd.get("spec", {}).get("names", {}).get("kind") == "ScaledObject":
                (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1"]
                return strict(version["schema"]["openAPIV3Schema"])
    pytest.fail(f"no ScaledObject CRD in {CRD_DIR}: run `make setup-rehearsal` again")


@pytest.mark.parametrize(
    "layer",
    [
        {},
        {"autoscaling": {"requests": {"signal": "rate", "keda": {"minReplicaCount": 0}}}},
        {"autoscaling": {"behaviorPreset": "conservative"}},
    ],
    ids=["recommendation", "rate-to-zero", "conservative"],
)
def test_the_scaled_object_is_valid_against_kedas_crd(layer, tmp_path):
    schema = scaled_object_schema()
    (scaled,) = objects_of(render(tmp_path, layer, files=(REQUESTS_VALUES,)), "ScaledObject")
    jsonschema.validate(scaled, schema)
    # the check can fail: a misspelt field, or a threshold that is not a string
    typo = deep_merge(scaled, {"spec": {"pollingIntervall": 5}})
    with pytest.raises(jsonschema.ValidationError, match="pollingIntervall"):
        jsonschema.validate(typo, schema)
    number = yaml.safe_load(yaml.safe_dump(scaled))
    number["spec"]["triggers"][0]["metadata"]["threshold"] = 4
    with pytest.raises(jsonschema.ValidationError, match="string"):
        jsonschema.validate(number, schema)


# --- plain HPA mode -------------------------------------------------------------------------


def test_plain_hpa_mode_scales_on_one_pods_metric_and_no_cpu(tmp_path):
    objects = render(tmp_path, files=(PODS_METRIC_VALUES,))
    assert objects_of(objects, "ScaledObject") == []
    (hpa,) = objects_of(objects, "HorizontalPodAutoscaler")
    values = deep_merge(defaults(), yaml.safe_load(PODS_METRIC_VALUES.read_text()))
    requests = values["autoscaling"]["requests"]
    assert hpa["spec"]["metrics"] == [
        {
            "type": "Pods",
            "pods": {
                "metric": {"name": requests["podsMetric"]["name"]},
                "target": {
                    "type": "AverageValue",
                    "averageValue": str(requests["targetPerReplica"]),
                },
            },
        }
    ]
    assert hpa["spec"]["minReplicas"] == values["autoscaling"]["minReplicas"]
    assert_valid_kubernetes(hpa)


def test_plain_hpa_mode_keeps_the_behavior_and_a_renamed_metric(tmp_path):
    layer = {
        "autoscaling": {
            "behaviorPreset": "responsive",
            "requests": {"targetPerReplica": 12, "podsMetric": {"name": "tfs_rate"}},
        }
    }
    (hpa,) = objects_of(render(tmp_path, GCS, PODS, layer), "HorizontalPodAutoscaler")
    (metric,) = hpa["spec"]["metrics"]
    assert metric["pods"]["metric"]["name"] == "tfs_rate"
    assert metric["pods"]["target"] == {"type": "AverageValue", "averageValue": "12"}
    assert hpa["spec"]["behavior"]["scaleUp"]["stabilizationWindowSeconds"] == 0
    assert_valid_kubernetes(hpa)


# --- bad values ---------------------------------------------------------------------------

# (id, values over GCS, the keys the error must name); every rule is the schema's but the last,
# a template's check (one value against another, which the schema cannot compare)
BAD_VALUES = [
    (
        "both-modes",
        deep_merge(KEDA, {"autoscaling": {"requests": {"podsMetric": {"enabled": True}}}}),
        ["autoscaling/requests/podsMetric/enabled"],
    ),
    (
        "requests-without-a-mode",
        {"autoscaling": {"metric": "requests"}},
        ["autoscaling/requests/keda/enabled", "autoscaling/requests/podsMetric/enabled"],
    ),
    (
        "keda-without-prometheus",
        deep_merge(KEDA, {"autoscaling": {"requests": {"keda": {"serverAddress": ""}}}}),
        ["autoscaling/requests/keda/serverAddress"],
    ),
    (
        "keda-address-not-a-url",
        deep_merge(KEDA, {"autoscaling": {"requests": {"keda": {"serverAddress": "prom:9090"}}}}),
        ["autoscaling/requests/keda/serverAddress"],
    ),
    (
        "zero-target",
        deep_merge(PODS, {"autoscaling": {"requests": {"targetPerReplica": 0}}}),
        ["autoscaling/requests/targetPerReplica"],
    ),
    (
        "negative-target",
        deep_merge(KEDA, {"autoscaling": {"requests": {"targetPerReplica": -1}}}),
        ["autoscaling/requests/targetPerReplica"],
    ),
    (
        "unknown-signal",
        deep_merge(KEDA, {"autoscaling": {"requests": {"signal": "queue"}}}),
        ["autoscaling/requests/signal"],
    ),
    (
        "unknown-metric",
        {"autoscaling": {"metric": "latency"}},
        ["autoscaling/metric"],
    ),
    (
        "keda-with-metric-cpu",
        deep_merge(KEDA, {"autoscaling": {"metric": "cpu"}}),
        ["autoscaling/requests/keda/enabled"],
    ),
    (
        "requests-without-tf-serving-metrics",
        deep_merge(PODS, {"monitoring": {"prometheus": {"enabled": False}}}),
        ["monitoring/prometheus/enabled"],
    ),
    (
        "window-not-a-duration",
        deep_merge(KEDA, {"autoscaling": {"requests": {"window": "30"}}}),
        ["autoscaling/requests/window"],
    ),
    (
        "negative-min-replica-count",
        deep_merge(KEDA, {"autoscaling": {"requests": {"keda": {"minReplicaCount": -1}}}}),
        ["autoscaling/requests/keda/minReplicaCount"],
    ),
    (
        "typo-in-requests",
        deep_merge(KEDA, {"autoscaling": {"requests": {"targetPerPod": 3}}}),
        ["targetPerPod"],
    ),
    (
        "keda-min-above-max",
        deep_merge(
            KEDA,
            {"autoscaling": {"maxReplicas": 2, "requests": {"keda": {"minReplicaCount": 3}}}},
        ),
        ["autoscaling.requests.keda.minReplicaCount", "autoscaling.maxReplicas"],
    ),
]
TEMPLATE_CHECKS = {"keda-min-above-max"}


@pytest.mark.parametrize(
    ("values", "keys", "by_schema"),
    [(values, keys, name not in TEMPLATE_CHECKS) for name, values, keys in BAD_VALUES],
    ids=[case[0] for case in BAD_VALUES],
)
def test_bad_request_values_fail_template_and_lint_naming_the_key(
    values, keys, by_schema, helm_name, tmp_path
):
    values_file = tmp_path / "values.yaml"
    values_file.write_text(yaml.safe_dump(deep_merge(GCS, values)))
    binary = helm.Helm.pinned(helm_name)
    with pytest.raises(helm.HelmError) as failure:
        binary.template(RESNET_CHART, [values_file])
    for key in keys:
        assert key in str(failure.value), str(failure.value)
    failed, output = lint(binary, values_file)
    for key in keys:
        assert key in output, output
    # helm lint fails on the schema; a template's `fail` it only logs (at INFO)
    assert failed == by_schema, output


def lint(binary: helm.Helm, values_file: Path) -> tuple[bool, str]:
    """`helm lint --strict`: did it fail, and everything it said (it reports on stdout)."""
    args = [str(binary.binary), "lint", "--strict", str(RESNET_CHART), "--values", str(values_file)]
    result = subprocess.run(args, capture_output=True, text=True, check=False)
    return result.returncode != 0, result.stdout + result.stderr


def test_the_bad_values_without_their_mistake_render(helm_name, tmp_path):
    """Each bad case above is one mistake away from values that render."""
    binary = helm.Helm.pinned(helm_name)
    for values in (
        KEDA,
        PODS,
        deep_merge(KEDA, {"autoscaling": {"requests": {"keda": {"minReplicaCount": 0}}}}),
    ):
        values_file = tmp_path / "values.yaml"
        values_file.write_text(yaml.safe_dump(deep_merge(GCS, values)))
        assert binary.template(RESNET_CHART, [values_file])
        assert "0 chart(s) failed" in binary.lint(RESNET_CHART, [values_file])
