"""The provider core and its optional capabilities, and the load's inputs read once, where the
command line is parsed (fast: nothing starts)."""

from __future__ import annotations

import pytest

from tooling import cli
from tooling.commands.up import run_spec
from tooling.loadgen.load_shapes import LOAD_VARIABLES
from tooling.providers import PlansResources, UploadsModel, provider
from tooling.runs.run_spec import LoadSpec


@pytest.mark.parametrize("name", ["rehearsal", "kind", "gke"])
def test_every_provider_has_the_core_and_only_gke_the_extras(name):
    chosen = provider(name)
    for method in ("create", "credentials", "delete", "story_target"):
        assert callable(getattr(chosen, method))
    assert isinstance(chosen, PlansResources) == (name == "gke")
    assert isinstance(chosen, UploadsModel) == (name == "gke")


def test_a_dry_run_elsewhere_than_gke_is_one_line(tmp_path, capsys):
    argv = ["up", "--provider", "rehearsal", "--dry-run", "--report", str(tmp_path / "run")]
    assert cli.run(argv) == 2
    assert "--dry-run describes GKE resources; use it with --provider gke" in (
        capsys.readouterr().err
    )
    assert not (tmp_path / "run").exists()


def test_the_load_below_the_commands_reads_no_environment(monkeypatch):
    monkeypatch.setenv("STEP_SECONDS", "99")
    monkeypatch.setenv("WAIT_MIN", "not a number")
    settings = LoadSpec("step").locust_settings()
    assert "STEP_SECONDS" not in settings.environment and "WAIT_MIN" not in settings.environment
    assert settings.run_time == f"{11 * 60 + 60}s"  # the lab's 11 steps of 60 s, and the margin


def test_the_command_reads_the_loads_environment_once_as_it_parses(monkeypatch, tmp_path):
    monkeypatch.setenv("STEP_USERS", "7")
    monkeypatch.setenv("WAIT_MAX", "2")
    monkeypatch.setenv("UNRELATED", "x")
    args = cli.build_parser().parse_args(["rehearse", "--report", str(tmp_path)])
    load = run_spec(args, "r-%H", down=True).load
    monkeypatch.setenv("STEP_USERS", "9")  # later changes reach nothing
    assert dict(load.variables) == {"STEP_USERS": "7", "WAIT_MAX": "2"}
    assert load.schedule().users_at(0) == 7


@pytest.mark.parametrize("verb", ["up", "rehearse", "tune"])
def test_help_lists_the_loads_environment_variables(verb, capsys):
    assert cli.run([verb, "--help"]) == 0
    printed = capsys.readouterr().out
    assert "environment variables" in printed
    missing = [name for name in LOAD_VARIABLES if name not in printed]
    assert not missing
