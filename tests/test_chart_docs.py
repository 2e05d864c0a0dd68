"""Every chart value is documented, and the READMEs' values tables are current."""

from __future__ import annotations

import pytest
from conftest import CHARTS

from tooling import chart_docs, cli


@pytest.mark.parametrize("chart", CHARTS, ids=lambda chart: chart.name)
def test_every_value_has_a_description(chart):
    rows, undocumented = chart_docs.value_docs(chart)
    assert undocumented == []
    assert all(row.description for row in rows)


@pytest.mark.parametrize("chart", CHARTS, ids=lambda chart: chart.name)
def test_readme_values_table_is_current(chart):
    assert (chart / "README.md").read_text() == chart_docs.render_readme(chart), (
        "run `resnet-serving chart-docs`"
    )


def test_undocumented_keys_are_found():
    text = "# -- documented\na: 1\nb:\n  c: 2\n# -- a map\nd:\n  e: 3\n"
    assert chart_docs.documented_keys(text) == {"a": "documented", "d": "a map"}


def test_check_mode_passes_on_current_readmes(capsys):
    assert cli.run(["chart-docs", "--check"]) == 0
