"""kind's metrics-server: metrics-server's own manifests (from its pinned module), with the
released image and kind's self-signed kubelet certificates accepted."""

from __future__ import annotations

import kubernetes_validate

from tooling import paths
from tooling.kind import metrics_server_objects


def test_metrics_server_objects_are_valid_and_use_the_released_image():
    version = paths.pinned_versions()["METRICS_SERVER_VERSION"]
    objects = metrics_server_objects(version)
    kinds = sorted(item["kind"] for item in objects)
    assert kinds.count("Deployment") == 1 and "APIService" in kinds and "Service" in kinds
    for item in objects:
        kubernetes_validate.validate(item, kubernetes_validate.latest_version(), strict=True)
        assert item["metadata"]["labels"]["k8s-app"] == "metrics-server"
    (deployment,) = (item for item in objects if item["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == f"registry.k8s.io/metrics-server/metrics-server:{version}"
    assert "--kubelet-insecure-tls" in container["args"]
    assert deployment["metadata"]["namespace"] == "kube-system"
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    (service,) = (item for item in objects if item["kind"] == "Service")
    assert service["spec"]["selector"] == selector
