"""The tools `make setup` installed are the versions pinned in hack/versions.env."""

from __future__ import annotations

import os
import subprocess

import helm_cli as helm
import pytest

from tooling import paths


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


def install_cluster_autoscaler(tmp_path, **environment: str) -> subprocess.CompletedProcess:
    """hack/install-cluster-autoscaler.sh with its own cache and tools folders, and no module
    proxy (an empty module cache, GOPROXY=off): only the git repositories can give sources."""
    env = {
        **os.environ,
        "GOPROXY": "off",
        "GOMODCACHE": str(tmp_path / "gomodcache"),
        "RESNET_SERVING_CACHE": str(tmp_path / "cache"),
        "RESNET_SERVING_TOOLS": str(tmp_path / "bin"),
        "RESNET_SERVING_CLUSTER_AUTOSCALER_GIT": "",
        "RESNET_SERVING_AUTOSCALER_GIT": "",
        **environment,
    }
    script = paths.REPO_ROOT / "hack" / "install-cluster-autoscaler.sh"
    return subprocess.run(
        ["bash", str(script)], env=env, capture_output=True, text=True, check=True, timeout=120
    )


def test_without_the_autoscalers_source_setup_says_the_stand_in_will_run(tmp_path):
    empty_repo = tmp_path / "not-the-autoscaler"
    subprocess.run(["git", "init", "-q", str(empty_repo)], check=True)
    for environment in (
        {},  # nothing named
        {  # repositories named, but without the pinned commits
            "RESNET_SERVING_CLUSTER_AUTOSCALER_GIT": str(empty_repo),
            "RESNET_SERVING_AUTOSCALER_GIT": str(empty_repo),
        },
    ):
        result = install_cluster_autoscaler(tmp_path, **environment)
        lines = [line for line in result.stdout.splitlines() if "cluster-autoscaler" in line]
        assert len(lines) == 1
        assert "the rehearsal will use its stand-in" in lines[0]
        assert "RESNET_SERVING_CLUSTER_AUTOSCALER_GIT" in lines[0]
        assert not (tmp_path / "bin" / "cluster-autoscaler").exists()


def test_a_cached_autoscaler_is_linked_without_its_source(tmp_path):
    version = paths.pinned_versions()["CLUSTER_AUTOSCALER_COMMIT"][:12]
    cached = tmp_path / "cache" / "tools" / f"cluster-autoscaler-{version}" / "cluster-autoscaler"
    cached.parent.mkdir(parents=True)
    cached.write_text("#!/bin/sh\n")
    cached.chmod(0o755)
    result = install_cluster_autoscaler(tmp_path)
    assert "stand-in" not in result.stdout
    assert (tmp_path / "bin" / "cluster-autoscaler").resolve() == cached


VENV_BIN = paths.REPO_ROOT / ".venv" / "bin"


def venv_tool(name: str) -> str:
    """A command in the project's .venv, run by the .venv's own interpreter."""
    script = VENV_BIN / name
    assert script.is_file(), f"{script} is missing: `make setup` puts it there"
    assert script.read_text().splitlines()[0] == f"#!{VENV_BIN / 'python'}"
    return str(script)


@pytest.mark.parametrize("command", [["pytest", "--version"], ["locust", "--version"]])
def test_the_projects_venv_has_its_tools(command):
    """An activated .venv runs the project's own pytest, locust and TensorFlow tools."""
    result = subprocess.run([venv_tool(command[0]), *command[1:]], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-500:]


def test_the_venvs_saved_model_cli_reads_the_exported_model(exported_model):
    command = [venv_tool("saved_model_cli"), "show", "--dir", str(exported_model / "1")]
    command += ["--tag_set", "serve", "--signature_def", "serving_default"]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-500:]
    assert "image_bytes" in result.stdout and "DT_STRING" in result.stdout


def test_the_venvs_pytest_sees_the_project():
    result = subprocess.run(
        [venv_tool("pytest"), "--collect-only", "-q", "tests/test_load_shapes.py"],
        cwd=paths.REPO_ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout[-800:]
    assert "test_load_shapes.py::" in result.stdout


def test_make_tests_workers_keep_each_shared_cluster_and_story_on_one_worker():
    """`make test`'s xdist groups reach the scheduler: the node cluster's tests (the node
    story's among them) share one group, the rehearsal story's another. Planned, not run."""
    e2e = "tests/test_autoscaling_e2e.py"
    plan = ["-n", "2", "--dist", "loadgroup", "--setup-plan", "-v", "-m", "slow"]
    result = subprocess.run(
        [venv_tool("pytest"), "-p", "no:cacheprovider", *plan, "tests/test_real_pods.py", e2e],
        cwd=paths.REPO_ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode in (0, 5), result.stdout[-800:]
    lines = result.stdout.splitlines()
    planned = [line.split()[0] for line in lines if line.startswith("tests/") and "::" in line]
    assert len(planned) > 10, result.stdout[-800:]
    for nodeid in planned:
        on_node = nodeid.startswith("tests/test_real_pods.py") or "[existing]" in nodeid
        assert nodeid.endswith("@node_cluster" if on_node else f"@{e2e}"), nodeid


def test_helm_docs_is_the_pinned_version():
    pinned = paths.pinned_versions()["HELM_DOCS_VERSION"]
    assert output_of(str(paths.tool("helm-docs")), "--version").split() == [
        "helm-docs",
        "version",
        pinned,
    ]


def build_lib_env(tmp_path) -> dict[str, str]:
    """The environment that gives hack/build-lib.sh its own cache and tools folders."""
    return {
        **os.environ,
        "RESNET_SERVING_CACHE": str(tmp_path / "cache"),
        "RESNET_SERVING_TOOLS": str(tmp_path / "bin"),
    }


def build_lib_command(script: str) -> str:
    """`script` after sourcing hack/build-lib.sh, as the install scripts do (errexit on)."""
    return f"set -euo pipefail\nsource {paths.REPO_ROOT / 'hack' / 'build-lib.sh'}\n{script}"


def build_lib(tmp_path, script: str) -> subprocess.CompletedProcess:
    """`script` run after sourcing hack/build-lib.sh, with its own cache and tools folders."""
    return subprocess.run(
        ["bash", "-c", build_lib_command(script)],
        env=build_lib_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )


# A tool "built" by writing a script; a failing step before the last must still fail the build.
TOOLS = """
make_tool() { printf '#!/bin/sh\\necho %s\\n' "$1" > "$out/$1" && chmod +x "$out/$1"; }
broken_tool() { echo "the compiler said no"; false; make_tool "$1"; }
"""


def test_tools_build_side_by_side_once_and_a_failure_says_why(tmp_path):
    both = build_lib(
        tmp_path,
        TOOLS + "build one v1 make_tool one & a=$!\nbuild two v1 make_tool two & b=$!\n"
        "wait_all $a $b",
    )
    assert both.returncode == 0, both.stderr
    assert sorted(line.split()[1] for line in both.stdout.splitlines() if "built" in line) == [
        "one",
        "two",
    ]
    assert output_of(str(tmp_path / "bin" / "two")).strip() == "two"

    again = build_lib(tmp_path, TOOLS + "build one v1 broken_tool one")
    assert again.returncode == 0 and again.stdout == ""  # cached: nothing built, nothing said

    broken = build_lib(tmp_path, TOOLS + "build three v1 broken_tool three & c=$!\nwait_all $c")
    assert broken.returncode == 1
    assert "building three v1 failed" in broken.stderr
    assert "the compiler said no" in broken.stderr
    assert not (tmp_path / "bin" / "three").exists()
    assert not list((tmp_path / "cache" / "tools").glob("three-v1*/"))


def test_two_setups_at_once_build_a_version_once_and_both_link_it(tmp_path):
    # the first setup holds the version's lock while its build sleeps; the second, started
    # meanwhile, waits and links the first's binary (without the lock it emptied the first's
    # $dir.partial and both builds failed)
    slow = TOOLS + 'slow_tool() { sleep 2; make_tool "$1"; }\n'
    script = slow + "build one v1 slow_tool one"
    first = subprocess.Popen(
        ["bash", "-c", build_lib_command(script)],
        env=build_lib_env(tmp_path),
        stdout=subprocess.PIPE,
        text=True,
    )
    assert first.stdout is not None
    assert first.stdout.readline().startswith("==> building one v1")  # it holds the lock
    second = build_lib(tmp_path, script)
    first_out, _ = first.communicate(timeout=60)
    assert first.returncode == 0 and second.returncode == 0, second.stderr
    assert "built one v1" in first_out
    assert "waiting for another setup's build of one v1" in second.stdout
    assert "built" not in second.stdout
    assert output_of(str(tmp_path / "bin" / "one")).strip() == "one"
