"""Bad values fail `helm template` (v4 and v3) with a message that names the key to fix."""

from __future__ import annotations

import helm_cli as helm
import pytest
import yaml
from conftest import LOCUST_CHART, RESNET_CHART, deep_merge

GCS = {"model": {"source": {"uri": "gs://bucket/resnet_101"}}}
HOST = {"loadtest": {"host": "http://resnet-serving:8501"}}


# (id, chart, values, words the error must contain)
BAD_VALUES = [
    (
        "unknown-behavior-preset",
        RESNET_CHART,
        deep_merge(GCS, {"autoscaling": {"behaviorPreset": "eager"}}),
        ["behaviorPreset"],
    ),
    (
        "placeholders-not-below-workloads",
        RESNET_CHART,
        deep_merge(GCS, {"overprovisioning": {"enabled": True, "priority": 0}}),
        ["overprovisioning", "priority"],
    ),
    (
        "type-of-minReplicas",
        RESNET_CHART,
        deep_merge(GCS, {"autoscaling": {"minReplicas": "two"}}),
        ["minReplicas"],
    ),
    (
        "typo-top-level",
        RESNET_CHART,
        deep_merge(GCS, {"autoscalling": {"enabled": True}}),
        ["autoscalling"],
    ),
    (
        "typo-nested",
        RESNET_CHART,
        deep_merge(GCS, {"autoscaling": {"targetCPU": 60}}),
        ["targetCPU"],
    ),
    ("s3-uri", RESNET_CHART, {"model": {"source": {"uri": "s3://bucket/model"}}}, ["uri"]),
    (
        "invalid-bucket",
        RESNET_CHART,
        {"model": {"source": {"uri": "gs://b/model"}}},
        ["model.source.uri", "bucket"],
    ),
    (
        "plain-http-uri",
        RESNET_CHART,
        {"model": {"source": {"uri": "http://models.example.com/m.tar.gz"}}},
        ["uri"],
    ),
    (
        "https-not-a-tarball",
        RESNET_CHART,
        {"model": {"source": {"uri": "https://models.example.com/model.zip"}}},
        ["uri"],
    ),
    (
        "min-above-max",
        RESNET_CHART,
        deep_merge(GCS, {"autoscaling": {"minReplicas": 5, "maxReplicas": 2}}),
        ["autoscaling.minReplicas", "autoscaling.maxReplicas"],
    ),
    (
        "cpu-hpa-without-cpu-request",
        RESNET_CHART,
        deep_merge(GCS, {"resources": {"requests": {"cpu": None}}}),
        ["resources.requests.cpu", "targetCPUUtilizationPercentage"],
    ),
    (
        "percent-as-string",
        RESNET_CHART,
        deep_merge(GCS, {"autoscaling": {"targetCPUUtilizationPercentage": "60%"}}),
        ["targetCPUUtilizationPercentage"],
    ),
    ("no-model-source", RESNET_CHART, {}, ["model.source.uri", "model.source.existingClaim"]),
    (
        "two-model-sources",
        RESNET_CHART,
        deep_merge(GCS, {"model": {"source": {"existingClaim": "models"}}}),
        ["model.source"],
    ),
    (
        "unknown-service-type",
        RESNET_CHART,
        deep_merge(GCS, {"service": {"type": "Ingress"}}),
        ["type"],
    ),
    (
        "port-out-of-range",
        RESNET_CHART,
        deep_merge(GCS, {"service": {"httpPort": 70000}}),
        ["httpPort"],
    ),
    (
        "zero-batch-size",
        RESNET_CHART,
        deep_merge(GCS, {"batching": {"maxBatchSize": 0}}),
        ["maxBatchSize"],
    ),
    (
        "grace-shorter-than-prestop",
        RESNET_CHART,
        deep_merge(GCS, {"terminationGracePeriodSeconds": 10}),
        ["terminationGracePeriodSeconds", "preStopSleepSeconds"],
    ),
    (
        "bad-pull-policy",
        RESNET_CHART,
        deep_merge(GCS, {"image": {"pullPolicy": "Sometimes"}}),
        ["pullPolicy"],
    ),
    (
        "bad-model-name",
        RESNET_CHART,
        deep_merge(GCS, {"model": {"name": "image classifier"}}),
        ["name"],
    ),
    (
        "batch-sizes-not-ending-at-max",
        RESNET_CHART,
        deep_merge(
            GCS, {"batching": {"enabled": True, "maxBatchSize": 8, "allowedBatchSizes": [2, 4]}}
        ),
        ["batching.allowedBatchSizes", "batching.maxBatchSize"],
    ),
    (
        "batch-sizes-not-increasing",
        RESNET_CHART,
        deep_merge(
            GCS, {"batching": {"enabled": True, "maxBatchSize": 8, "allowedBatchSizes": [4, 2, 8]}}
        ),
        ["batching.allowedBatchSizes", "increasing"],
    ),
    (
        "placeholders-below-the-expendable-cutoff",
        RESNET_CHART,
        deep_merge(GCS, {"overprovisioning": {"enabled": True, "priority": -11}}),
        ["overprovisioning", "priority", "-10"],
    ),
    (
        "image-digest-not-sha256",
        RESNET_CHART,
        deep_merge(GCS, {"image": {"digest": "2.21.0"}}),
        ["image", "digest"],
    ),
    (
        "fetcher-digest-too-short",
        RESNET_CHART,
        deep_merge(GCS, {"model": {"fetcher": {"gcsImage": {"digest": "sha256:abc"}}}}),
        ["gcsImage", "digest"],
    ),
    (
        "cpu-limit-not-cores",
        RESNET_CHART,
        deep_merge(GCS, {"resources": {"limits": {"cpu": "2k"}}}),
        ["limits", "cpu"],
    ),
    ("locust-without-host", LOCUST_CHART, {}, ["loadtest.host"]),
    (
        "locust-unknown-shape",
        LOCUST_CHART,
        deep_merge(HOST, {"loadtest": {"shape": "wave"}}),
        ["shape"],
    ),
    (
        "locust-file-shape-without-csv",
        LOCUST_CHART,
        deep_merge(HOST, {"loadtest": {"shape": "file"}}),
        ["loadtest.shapeFile"],
    ),
    (
        "locust-bad-run-time",
        LOCUST_CHART,
        deep_merge(HOST, {"loadtest": {"runTime": "ten minutes"}}),
        ["runTime"],
    ),
    (
        "locust-zero-workers",
        LOCUST_CHART,
        deep_merge(HOST, {"worker": {"replicas": 0}}),
        ["replicas"],
    ),
    ("locust-typo", LOCUST_CHART, deep_merge(HOST, {"loadtest": {"headles": True}}), ["headles"]),
    (
        "locust-autoscaled-headless-workers",  # a Job of worker.replicas pods has no HPA
        LOCUST_CHART,
        deep_merge(HOST, {"worker": {"autoscaling": {"enabled": True}}}),
        ["worker.autoscaling.enabled", "loadtest.headless"],
    ),
    (
        "locust-negative-worker-backoff",
        LOCUST_CHART,
        deep_merge(HOST, {"worker": {"backoffLimit": -1}}),
        ["backoffLimit"],
    ),
]


@pytest.mark.parametrize(
    ("chart", "values", "words"),
    [case[1:] for case in BAD_VALUES],
    ids=[case[0] for case in BAD_VALUES],
)
def test_bad_values_fail_naming_the_key(chart, values, words, helm_name, tmp_path):
    values_file = tmp_path / "values.yaml"
    values_file.write_text(yaml.safe_dump(values))
    with pytest.raises(helm.HelmError) as failure:
        helm.Helm.pinned(helm_name).template(chart, [values_file])
    message = str(failure.value)
    for word in words:
        assert word in message or word.replace(".", "/") in message, message


def test_the_same_values_without_the_mistake_render(helm_name, tmp_path):
    """The bad cases above differ from values that render, so each failure is the mistake's."""
    for chart, values in ((RESNET_CHART, GCS), (LOCUST_CHART, HOST)):
        values_file = tmp_path / "values.yaml"
        values_file.write_text(yaml.safe_dump(values))
        assert helm.Helm.pinned(helm_name).template(chart, [values_file])
