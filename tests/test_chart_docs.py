"""The charts' READMEs are what helm-docs makes of README.md.gotmpl and values.yaml (`make docs`,
hack/docs.sh), and every value has a `# --` description."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import CHARTS

from tooling import paths

DOCS = paths.REPO_ROOT / "hack" / "docs.sh"
# Rows without a description: a key nobody documented that no documented map above it covers,
# or a `# --` line that helm-docs reads as `# KEY -- description` (a ` --flag` in its first line).
UNDOCUMENTED = (
    "{{- range .Values }}{{ if not (or .Description .AutoDescription) }}{{ .Key }}\n"
    "{{ end }}{{ end }}"
)


def helm_docs(chart: Path, *flags: str) -> str:
    """What hack/docs.sh would write to `chart`/README.md (helm-docs --dry-run)."""
    command = ["bash", str(DOCS), "--dry-run", "--chart-search-root", str(chart.parent)]
    command += ["--chart-to-generate", str(chart), *flags]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and not result.stderr, result.stderr
    return result.stdout


def undocumented(chart: Path, tmp_path: Path) -> list[str]:
    template = tmp_path / "undocumented.gotmpl"
    template.write_text(UNDOCUMENTED)
    return helm_docs(chart, "--template-files", str(template)).split()


@pytest.mark.parametrize("chart", CHARTS, ids=lambda chart: chart.name)
def test_readme_is_what_helm_docs_generates(chart):
    assert (chart / "README.md").read_text() == helm_docs(chart), "run `make docs`"


@pytest.mark.parametrize("chart", CHARTS, ids=lambda chart: chart.name)
def test_every_value_has_a_description(chart, tmp_path):
    assert undocumented(chart, tmp_path) == [], "add a `# --` comment in values.yaml"


def chart_copy(tmp_path: Path, values_tail: str) -> Path:
    chart = shutil.copytree(CHARTS[1], tmp_path / "charts" / CHARTS[1].name)
    with (chart / "values.yaml").open("a") as values:
        values.write(values_tail)
    return chart


def test_a_changed_value_makes_the_readme_stale(tmp_path):
    chart = chart_copy(tmp_path, "# -- A new value.\nnewValue: 3\n")
    generated = helm_docs(chart)
    assert (chart / "README.md").read_text() != generated
    assert "| `newValue` | `3` | A new value. |" in generated.splitlines()


def test_undocumented_values_are_found(tmp_path):
    chart = chart_copy(
        tmp_path,
        "# a plain comment documents nothing\nplain: 1\n"
        "# -- A documented map covers its keys.\nmap:\n  inner: 2\n"
        "# -- Runs with --flag, which helm-docs takes for `# KEY -- description`.\nflagged: 3\n",
    )
    assert undocumented(chart, tmp_path) == ["plain", "flagged"]


def test_the_prose_comes_from_the_template(tmp_path):
    chart = chart_copy(tmp_path, "")
    template = chart / "README.md.gotmpl"
    template.write_text(template.read_text().replace("## Values", "## Values\n\nNew prose."))
    assert "## Values\n\nNew prose.\n" in helm_docs(chart)
