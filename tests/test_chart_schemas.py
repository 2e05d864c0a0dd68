"""Every ci/*-values.yaml of both charts renders with helm v4 and v3, and every object is valid
against the Kubernetes OpenAPI schema (strict: unknown fields fail) for 1.31 and the newest
version known, with kubernetes-validate and again with kubeconform (both offline)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from conftest import case_id, ci_cases, render

from tooling import paths

KUBE_VERSIONS = ("1.31.0", kubernetes_validate.latest_version())
SCHEMA_DIR = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
# Custom resources Kubernetes' schema does not hold: KEDA's ScaledObject is validated against
# KEDA's own CRD by tests/test_chart_request_autoscaling.py.
CUSTOM_API_GROUPS = frozenset({"keda.sh"})


def built_in(obj: dict) -> bool:
    return obj["apiVersion"].split("/")[0] not in CUSTOM_API_GROUPS


@pytest.mark.parametrize("case", ci_cases(), ids=case_id)
@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
def test_every_object_is_valid_kubernetes(case, kube_version, helm_name):
    chart, values = case
    objects = render(chart, values, helm_name)
    assert {"Deployment", "Service", "ConfigMap"} & {obj["kind"] for obj in objects}
    for obj in filter(built_in, objects):
        try:
            kubernetes_validate.validate(obj, kube_version, strict=True)
        except kubernetes_validate.ValidationError as error:
            pytest.fail(f"{obj['kind']}/{obj['metadata']['name']} on {kube_version}: {error}")


def standalone_schema(version: str, file_name: str) -> str:
    """One of kubernetes-validate's schemas with its shared definitions inlined, since
    kubeconform can't follow its `/api/_definitions.json` references to local files."""
    folder = SCHEMA_DIR / f"v{version}-local-strict"
    schema = json.loads((folder / file_name).read_text())
    schema["$defs"] = json.loads((folder / "_definitions.json").read_text())["$defs"]
    return json.dumps(schema).replace('"/api/_definitions.json#/$defs/', '"#/$defs/')


@pytest.fixture(scope="session")
def kubeconform_schemas(tmp_path_factory) -> Path:
    """Standalone schemas for the kinds the charts render, laid out as kubeconform expects."""
    root = tmp_path_factory.mktemp("kubeconform-schemas")
    kinds = {
        (obj["kind"], obj["apiVersion"])
        for case in ci_cases()
        for obj in filter(built_in, render(*case))
    }
    for version in KUBE_VERSIONS:
        folder = root / f"v{version}-local-strict"
        folder.mkdir()
        for kind, api_version in kinds:
            group_version = api_version.split("/")
            suffix = "-".join([group_version[0].split(".")[0], *group_version[1:]])
            name = f"{kind.lower()}-{suffix}.json"
            (folder / name).write_text(standalone_schema(version, name))
    return root


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
def test_kubeconform_accepts_every_rendered_object(kube_version, kubeconform_schemas, tmp_path):
    documents = [obj for case in ci_cases() for obj in filter(built_in, render(*case))]
    manifest = tmp_path / "all.yaml"
    manifest.write_text(yaml.safe_dump_all(documents))
    location = str(kubeconform_schemas) + (
        "/{{ .NormalizedKubernetesVersion }}-local{{ .StrictSuffix }}"
        "/{{ .ResourceKind }}{{ .KindSuffix }}.json"
    )
    result = subprocess.run(
        [
            str(paths.tool("kubeconform")),
            "-strict",
            "-summary",
            "-kubernetes-version",
            kube_version,
            "-schema-location",
            location,
            str(manifest),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Valid: {len(documents)}" in result.stdout, result.stdout
