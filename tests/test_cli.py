"""CLI errors say what to do next, in one line, with exit code 2."""

from __future__ import annotations

import pytest

from tooling import cli


def test_unknown_profile_lists_the_known_ones(capsys):
    assert cli.run(["rehearse", "--profile", "slow"]) == 2
    assert "invalid choice: 'slow' (choose from 'lab', 'fast')" in capsys.readouterr().err


def test_missing_rehearsal_binaries_name_the_make_target(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RESNET_SERVING_TOOLS", str(tmp_path))
    assert cli.run(["cluster", "create", "--kubeconfig", str(tmp_path / "c" / "kubeconfig")]) == 2
    assert "run `make setup-rehearsal`" in capsys.readouterr().err


def test_export_refuses_an_unknown_weights_file(tmp_path, capsys):
    assert cli.run(["model", "export", "--out", str(tmp_path), "--weights", "nope.h5"]) == 2
    assert "use --weights imagenet, random" in capsys.readouterr().err


def test_kind_without_a_container_engine_says_what_to_use(tmp_path, monkeypatch, capsys):
    from tooling.kind import container_engine_problem

    monkeypatch.delenv("KIND_EXPERIMENTAL_PROVIDER", raising=False)
    if container_engine_problem() is None:
        pytest.skip("Docker runs here: kind would really create a cluster")
    kubeconfig = tmp_path / "kubeconfig"
    assert (
        cli.run(["cluster", "create", "--provider", "kind", "--kubeconfig", str(kubeconfig)]) == 2
    )
    err = capsys.readouterr().err
    assert "kind runs its nodes as containers, and " in err and "--provider rehearsal" in err
    assert "docker" in err
    assert not kubeconfig.exists()


def test_a_bug_keeps_its_traceback(monkeypatch):
    """Only a UserError becomes one line; anything else is a bug and must show where it is."""
    from tooling.commands import report

    def broken(args):
        raise ValueError("a bug, not the user's doing")

    monkeypatch.setattr(report, "handle_report", broken)
    with pytest.raises(ValueError, match="a bug"):
        cli.run(["report", "runs/anything"])


def test_an_unreachable_cluster_is_one_line_saying_what_to_do(tmp_path, capsys):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: gone\n"
        "clusters: [{name: gone, cluster: {server: 'http://127.0.0.1:9'}}]\n"
        "contexts: [{name: gone, context: {cluster: gone, user: nobody}}]\n"
        "users: [{name: nobody, user: {}}]\n"
    )
    run_dir = str(tmp_path / "run")
    assert cli.run(["watch", "--kubeconfig", str(kubeconfig), "--report", run_dir]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert f"the cluster in {kubeconfig} does not answer" in err and "cluster create" in err
