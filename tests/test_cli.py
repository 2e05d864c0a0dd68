"""CLI errors say what to do next, in one line, with exit code 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tooling import cli
from tooling.console import EARLY_TF_LOG, stderr_without
from tooling.errors import UserError


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


IN_A_FRESH_PROCESS = """
import json, sys
from tooling import cli
for argv in json.loads(sys.argv[1]):
    code = cli.run(argv)
    print(code, sorted({"tensorflow", "keras", "google.cloud.storage"} & set(sys.modules)))
"""


def refused_in_a_fresh_process(*argvs: list[str]) -> list[str]:
    """Runs each command line with cli.run in one new process (no TensorFlow loaded yet, and
    TF_CPP_MIN_LOG_LEVEL as a user has it: unset); asserts each exited 2 having imported no
    heavy library, and returns the process's stderr lines."""
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    done = subprocess.run(
        [sys.executable, "-c", IN_A_FRESH_PROCESS, json.dumps(argvs)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["2 []"] * len(argvs), done.stderr
    return done.stderr.splitlines()


def test_export_checks_its_weights_file_before_importing_tensorflow(tmp_path):
    """`model export --weights /nonexistent/weights.h5` imported TensorFlow first: 4 s, and its
    C++ logging above the one-line error."""
    argv = ["model", "export", "--weights", "/nonexistent/weights.h5", "--out", str(tmp_path)]
    [line] = refused_in_a_fresh_process(argv)
    assert line.startswith("resnet-serving: weights file /nonexistent/weights.h5 not found")
    assert "--weights imagenet, random" in line
    assert not any(tmp_path.iterdir())


def test_commands_that_need_tensorflow_check_their_inputs_before_it(tmp_path):
    """serve-local, calibrate and model upload also imported TensorFlow (or Cloud Storage) first."""
    missing = str(tmp_path / "missing" / "image_classifier")
    notes = tmp_path / "weights.txt"
    notes.write_text("not weights\n")
    out = str(tmp_path / "out")
    cases = {
        ("model", "export", "--out", out, "--version", "0"): "--version 0: give",
        ("model", "export", "--out", out, "--weights", str(notes)): "Keras reads .h5",
        ("model", "export", "--out", str(notes)): f"{notes} is a file, not a folder",
        ("serve-local",): "give --model_base_path",
        ("serve-local", "--model_base_path", missing): f"{missing} holds no <version>/",
        ("calibrate", "--model", missing): f"{missing} holds no <version>/",
        ("calibrate", "--requests", "0"): "--requests 0: give 1 or more",
        ("model", "upload", missing, "gs://bucket/models"): f"{missing} holds no <version>/",
    }
    lines = refused_in_a_fresh_process(*map(list, cases))
    assert len(lines) == len(cases), lines
    for line, said in zip(lines, cases.values(), strict=True):
        assert line.startswith("resnet-serving: ") and said in line
    assert not (tmp_path / "out").exists()


def test_tensorflow_logging_before_its_log_level_is_read_is_dropped(capfd):
    """TF_CPP_MIN_LOG_LEVEL=2 does not hide what absl logs while TensorFlow is imported (oneDNN's
    notice); those INFO and WARNING lines are dropped, the rest of stderr passes."""
    with stderr_without(EARLY_TF_LOG):
        os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are ")
        os.write(2, b"written to STDERR\nI0000 00:00:1796668326.789435    7757 port.cc:153] ")
        os.write(2, b"oneDNN custom operations are on.\nE0000 00:00:1.5 7757 x.cc:1] kept\n")
        os.write(2, b"W is not a log line\n")
    assert capfd.readouterr().err == "E0000 00:00:1.5 7757 x.cc:1] kept\nW is not a log line\n"


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


@pytest.fixture
def nothing_can_start(tmp_path, monkeypatch):
    """kwokctl's folder in tmp_path, and no rehearsal binaries: a check that came too late
    would end in "binaries missing", never in a real cluster."""
    monkeypatch.setenv("KWOK_WORKDIR", str(tmp_path / "kwok"))
    monkeypatch.setenv("RESNET_SERVING_TOOLS", str(tmp_path / "no-tools"))
    return tmp_path / "kwok"


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_a_values_file_that_is_missing_or_not_a_mapping_is_refused_before_anything_starts(
    tmp_path, nothing_can_start, capsys
):
    """`rehearse --values /nonexistent/values.yaml` started a whole cluster, then ended in a
    FileNotFoundError traceback."""
    listed, broken = tmp_path / "list.yaml", tmp_path / "broken.yaml"
    listed.write_text("- replicas: 2\n")
    broken.write_text("autoscaling: [minReplicas\n")
    run_dir = tmp_path / "run"
    for argv, said in (
        (["rehearse", "--values", "/nonexistent/values.yaml"], "--values /nonexistent/values"),
        (["up", "--values", str(listed)], "holds a list, not a mapping of chart keys"),
        (["rehearse", "--values", str(broken)], "not readable as YAML (line 2, column 1"),
        (["tune", "--base-values", "/nonexistent.yaml"], "--base-values /nonexistent.yaml"),
    ):
        assert cli.run([*argv, "--report", str(run_dir)]) == 2
        assert said in one_error_line(capsys)
    assert not (nothing_can_start / "clusters").exists() and not run_dir.exists()


def test_load_run_refuses_a_host_that_is_not_an_address(tmp_path, capsys):
    """`load run --host not-a-url` started Locust, which failed every request."""
    report = tmp_path / "report"
    for host, protocol in (("not-a-url", "rest"), ("127.0.0.1:8501", "rest"), ("h", "grpc")):
        argv = ["load", "run", "--host", host, "--protocol", protocol, "--report", str(report)]
        assert cli.run(argv) == 2
        err = one_error_line(capsys)
        assert f"--host {host!r}" in err and "http://HOST[:PORT]" in err
    assert not report.exists()  # Locust's report folder is made first thing when it starts


def test_the_other_inputs_of_a_run_are_checked_before_it_starts(
    tmp_path, nothing_can_start, capsys
):
    run_dir = tmp_path / "run"
    for argv, said in (
        (["rehearse", "--min-nodes", "3", "--max-nodes", "2"], "--max-nodes 2"),
        (["up", "--min-nodes", "-1"], "--min-nodes -1"),
        (["tune", "--max-nodes", "0"], "--max-nodes 0"),
        (["rehearse", "--step-seconds", "0"], "--step-seconds 0: give a number of seconds"),
        (["up", "--provider", "kind", "--shape", "wave"], "--shape wave: unknown load shape"),
        (["tune", "--shape", f"file:{tmp_path / 'none.csv'}"], "--shape file:"),
        (["load", "run", "--host", "http://x", "--users", "0"], "--users 0: give 1 or more"),
    ):
        assert cli.run([*argv, "--report", str(run_dir)]) == 2
        assert said in one_error_line(capsys)
    assert not (nothing_can_start / "clusters").exists() and not run_dir.exists()


HOLD = """
import sys, time
from pathlib import Path
from tooling.rehearsal.cluster import owned
with owned(sys.argv[1], Path(sys.argv[2])):
    print("held", flush=True)
    time.sleep(120)
"""


def test_a_second_run_under_a_name_in_use_is_refused_before_it_starts_anything(
    tmp_path, nothing_can_start, capsys
):
    """Two runs with one name shared pid files: the second's teardown stopped the first's
    processes. The name is held (a lock) for a run's life, and taken before anything starts."""
    from tooling.rehearsal.cluster import owned, owner_lock

    first = subprocess.Popen(
        [sys.executable, "-c", HOLD, "busy", str(tmp_path / "first")],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "KWOK_WORKDIR": str(nothing_can_start)},
    )
    try:
        assert first.stdout.readline() == "held\n"
        second = tmp_path / "second"
        for argv in (
            ["rehearse", "--name", "busy", "--report", str(second)],
            ["up", "--name", "busy", "--report", str(second)],
            ["cluster", "delete", "--name", "busy"],
        ):
            assert cli.run(argv) == 2
            err = one_error_line(capsys)
            assert "cluster busy is in use by another run" in err and "--name busy-2" in err
            assert f"pid {first.pid}" in err
        assert not (nothing_can_start / "clusters").exists() and not second.exists()
    finally:
        first.kill()
        first.wait()
    with owned("busy", tmp_path / "third"):  # the lock ended with its process: no stale lock
        assert owner_lock("busy").is_file()
    assert not owner_lock("busy").exists()  # removed by its owner at the end


def test_a_failed_run_keeps_the_logs_its_error_names(tmp_path, nothing_can_start):
    """The error named ~/.kwok/clusters/NAME/logs/cluster-autoscaler.log, which the teardown
    had already deleted: the logs are copied into the run directory first, and the error
    names the copy."""
    from tooling.rehearsal import components
    from tooling.rehearsal.cluster import delete_cluster, owned

    log = components.log_file("mine", "cluster-autoscaler")
    log.parent.mkdir(parents=True)
    log.write_text("I1201 Cleaned up, exiting\n")
    (log.parent / "kube-apiserver.log").write_text("serving\n")
    run_dir = tmp_path / "run"
    with pytest.raises(UserError) as raised, owned("mine", run_dir):
        try:
            raise UserError(f"cluster-autoscaler exited (Cleaned up, exiting); its log: {log}")
        finally:
            delete_cluster("mine")  # the run's teardown
    assert str(raised.value).endswith(f"its log: {run_dir / 'logs' / 'cluster-autoscaler.log'}")
    assert (run_dir / "logs" / "cluster-autoscaler.log").read_text() == log.read_text()
    assert (run_dir / "logs" / "kube-apiserver.log").is_file()
