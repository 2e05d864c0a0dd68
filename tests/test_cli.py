"""CLI errors say what to do next, in one line, with exit code 2."""

from __future__ import annotations

from tooling import cli


def test_unknown_profile_lists_the_known_ones(capsys):
    assert cli.run(["rehearse", "--profile", "slow"]) == 2
    assert "use one of: lab, fast" in capsys.readouterr().err


def test_missing_rehearsal_binaries_name_the_make_target(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RESNET_SERVING_TOOLS", str(tmp_path))
    assert cli.run(["cluster", "create", "--workdir", str(tmp_path / "c")]) == 2
    assert "run `make setup-rehearsal`" in capsys.readouterr().err


def test_export_refuses_an_unknown_weights_file(tmp_path, capsys):
    assert cli.run(["model", "export", "--out", str(tmp_path), "--weights", "nope.h5"]) == 2
    assert "use --weights imagenet, random" in capsys.readouterr().err
