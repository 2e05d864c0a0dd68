"""`helm lint --strict` (v4 and v3) with every ci values file, and chart-testing's `ct lint`."""

from __future__ import annotations

import os
import subprocess

import helm_cli as helm
import pytest
from conftest import case_id, ci_cases

from tooling import paths


@pytest.mark.parametrize("case", ci_cases(), ids=case_id)
def test_helm_lint_strict(case, helm_name):
    chart, values = case
    output = helm.Helm.pinned(helm_name).lint(chart, [values])
    assert "0 chart(s) failed" in output


def test_ct_lint_passes_with_the_projects_ct_yaml():
    tools = paths.tools_bin()
    result = subprocess.run(
        [str(paths.tool("ct")), "lint", "--config", "ct.yaml", "--all"],
        cwd=paths.REPO_ROOT,
        env={
            **os.environ,
            "PATH": f"{tools}{os.pathsep}{os.environ['PATH']}",
            "CT_CONFIG_DIR": str(tools.parent / "ct"),
        },
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "All charts linted successfully" in output
    for chart in ("resnet-serving", "locust"):
        assert f"✔︎ {chart}" in output
