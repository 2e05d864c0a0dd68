"""`resnet-serving tune`: configurations from values files and grids, the Pareto marking
worked out by hand, and the table of recorded runs checked against each run's own
summary.txt. (Each configuration is a `rehearse` process: `make proof` runs three.)"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
import yaml

from tooling import cli
from tooling.errors import UserError
from tooling.report.summary import TimelineSummary
from tooling.tuning.configurations import Configuration, configurations, parse_axis
from tooling.tuning.results import COLUMNS, Row, pareto_marked, write_results
from tooling.tuning.runner import Outcome

TARGET = "autoscaling.targetCPUUtilizationPercentage"


def test_a_grid_is_every_combination_laid_over_the_base(tmp_path):
    base = (tmp_path / "base.yaml",)
    axes = [parse_axis(f"{TARGET}=50,70"), parse_axis("autoscaling.behaviorPreset=responsive")]
    found = configurations([], axes, base, tmp_path / "grid")
    assert [c.name for c in found] == [
        "targetCPUUtilizationPercentage=50,behaviorPreset=responsive",
        "targetCPUUtilizationPercentage=70,behaviorPreset=responsive",
    ]
    assert found[1].values_files[0] == base[0]
    point = yaml.safe_load(found[1].values_files[1].read_text())
    assert point == {
        "autoscaling": {"targetCPUUtilizationPercentage": 70, "behaviorPreset": "responsive"}
    }


@pytest.mark.parametrize(
    ("grid", "message"),
    [
        ("autoscaling.minReplicas", "KEY=VALUE1,VALUE2"),
        ("=1,2", "KEY=VALUE1,VALUE2"),
        ("autoscaling..x=1", "not a dotted chart key"),
    ],
)
def test_a_bad_grid_says_how_to_write_it(grid, message):
    with pytest.raises(UserError, match=message):
        parse_axis(grid)


def test_one_configuration_is_not_a_comparison(tmp_path):
    values = tmp_path / "only.yaml"
    values.write_text("{}\n")
    with pytest.raises(UserError, match="two or more"):
        configurations([values], [], (), tmp_path)
    with pytest.raises(UserError, match="no such values file"):
        configurations([values, tmp_path / "missing.yaml"], [], (), tmp_path)


def test_tune_passes_rehearses_own_flags_through_as_parsed():
    from tooling.commands.tune import rehearse_arguments

    parser = cli.build_parser()
    given = ["--shape", "ramp", "--load", "model", "--step-seconds", "5", "--profile", "lab"]
    given += ["--node-autoscaler", "stand-in", "--min-nodes", "2", "--max-nodes", "4"]
    given += ["--autoscaling-profile", "optimize-utilization"]
    forwarded = rehearse_arguments(parser.parse_args(["tune", "--grid", "a=1,2", *given]))
    assert vars(parser.parse_args(["rehearse", *forwarded])) == vars(
        parser.parse_args(["rehearse", *given])
    )


def summary(over_slo: float, node_minutes: float) -> TimelineSummary:
    return TimelineSummary(1, 1, None, None, None, 1.0, node_minutes, 0.0, over_slo, 1000.0)


def test_pareto_best_are_those_no_other_beats_on_both(tmp_path):
    log = tmp_path / "x.log"
    rows = [
        Row("cheap-slow", summary(60, 3.0), log),
        Row("dear-fast", summary(5, 6.0), log),
        Row("dominated", summary(60, 6.0), log),  # cheap-slow is as slow and cheaper
        Row("middle", summary(20, 4.0), log),
        Row("failed", None, log),
    ]
    marked = {row.name: row.pareto for row in pareto_marked(rows)}
    assert marked == {
        "cheap-slow": True,
        "dear-fast": True,
        "dominated": False,
        "middle": True,
        "failed": False,
    }


RECORDED = Path(__file__).parent / "data" / "tune-runs"  # a real tiny grid's runs (README there)


def summary_values(text: str) -> dict[str, str]:
    """summary.txt's lines: a 29-character name, then the value."""
    return {line[:29].strip(): line[29:].strip() for line in text.splitlines()}


def test_the_table_of_recorded_runs_is_each_runs_own_summary(tmp_path):
    """tune's table, Pareto marks, tune.md and pictures from recorded runs and one that
    recorded nothing: each row says what `report` says of that run."""
    out = tmp_path / "tune"
    outcomes = []
    for recorded in sorted(path for path in RECORDED.iterdir() if path.is_dir()):
        run_dir = out / recorded.name
        shutil.copytree(recorded, run_dir)
        assert cli.run(["report", str(run_dir)]) == 0  # writes the run's summary.txt
        configuration = Configuration(recorded.name, ())
        outcomes.append(Outcome(configuration, run_dir, out / f"{recorded.name}.log", 0, 60.0))
    assert len(outcomes) >= 2
    never = Configuration("never-ran", ())
    outcomes.append(Outcome(never, out / "never-ran", out / "never-ran.log", 1, 5.0))
    table, _ = write_results(outcomes, out, 1000.0, "tune: step shape, load model")

    with open(out / "tune.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["configuration"] for row in rows] == [o.configuration.name for o in outcomes]
    assert set(rows[0]) == set(COLUMNS)
    for row in rows[:-1]:
        own = summary_values((out / row["configuration"] / "summary.txt").read_text())
        assert row["over SLO (s)"] == own["over the 1000 ms SLO for"].removesuffix(" s")
        assert row["worst p95 (ms)"] == own["worst p95"].removesuffix(" ms")
        assert row["failures"] == own["failures"]
        assert row["replica-minutes"] == own["replica-minutes"]
        assert row["node-minutes"] == own["node-minutes"]
        assert row["first scale-out (s)"] == own["first scale-out"].split(" s ")[0]
    assert rows[-1]["over SLO (s)"] == "no run: see never-ran.log" and rows[-1]["pareto"] == ""
    scores = [(float(r["over SLO (s)"]), float(r["node-minutes"])) for r in rows[:-1]]
    for row, (slo, nodes) in zip(rows, scores, strict=False):
        beaten = any(o[0] <= slo and o[1] <= nodes and o != (slo, nodes) for o in scores)
        assert (row["pareto"] == "★") == (not beaten)
    assert "★" in {row["pareto"] for row in rows}
    markdown = (out / "tune.md").read_text()
    autoscaler = summary_values((out / rows[0]["configuration"] / "summary.txt").read_text())
    assert markdown.startswith("# tune: step shape, load model\n")
    assert f"node autoscaler: {autoscaler['node autoscaler']}" in markdown and table in markdown
    assert (out / "tune.png").stat().st_size > 10_000
    assert (out / "compare" / "compare.png").is_file()
