"""The tools `make setup` installed are the versions pinned in hack/versions.env."""

from __future__ import annotations

import subprocess

from tooling import helm, paths


def output_of(*command: str) -> str:
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout


def test_helm_v4_and_v3_are_the_pinned_versions():
    pinned = paths.pinned_versions()
    assert helm.Helm.pinned("helm").version().startswith(pinned["HELM_VERSION"])
    assert helm.Helm.pinned("helm3").version().startswith(pinned["HELM3_VERSION"])


def test_helm_v3_assumes_the_pinned_kubernetes_version(tmp_path):
    """`go install` alone leaves helm v3 assuming v1.20, which refuses kubeVersion >=1.30."""
    chart = tmp_path / "probe"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: probe\nversion: 0.1.0\n")
    (chart / "templates" / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: probe\n"
        "data:\n  kube: {{ .Capabilities.KubeVersion.Version | quote }}\n"
    )
    (rendered,) = helm.Helm.pinned("helm3").template(chart)
    pinned = paths.pinned_versions()["HELM3_KUBE_VERSION"]
    assert rendered["data"]["kube"].startswith(f"v{pinned}.")


def test_kubeconform_and_ct_are_the_pinned_versions():
    pinned = paths.pinned_versions()
    assert output_of(str(paths.tool("kubeconform")), "-v").strip() == pinned["KUBECONFORM_VERSION"]
    assert pinned["CHART_TESTING_VERSION"] in output_of(str(paths.tool("ct")), "version")
