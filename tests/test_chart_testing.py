"""chart-testing's `ct install` on the node cluster: both charts, each install case of
ct-install/cases.yaml installed, `helm test`ed and uninstalled; and, without a
cluster, the choice of those cases from the charts' ci files."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import helm_cli as helm
import pytest
from conftest import CHARTS

from tooling import paths


def _install_cases_module():
    path = paths.REPO_ROOT / "ct-install" / "install_cases.py"
    spec = importlib.util.spec_from_file_location("install_cases", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


install_cases = _install_cases_module()
LOCAL_IMAGES = frozenset(
    ref.read_text().strip() for ref in (paths.REPO_ROOT / ".tools" / "images").glob("*.ref")
) or frozenset(
    {
        "resnet-serving/tfserving-stand-in:2.21.0",
        "resnet-serving/fetcher:bookworm",
        "resnet-serving/locust:2.47.0",
        "resnet-serving/pause:3.10",
    }
)
CT_TIMEOUT_SECONDS = 1800
CT_KUBECTL_TIMEOUT = "30s"  # ct's --kubectl-timeout default, in each kubectl command it runs
HELM_LIST_ALL = ("--deployed", "--failed", "--pending", "--superseded", "--uninstalling")


def test_every_ci_file_is_an_install_case_or_left_out_with_its_reason():
    recipe = install_cases.recipe()
    assert sorted(recipe) == sorted(chart.name for chart in CHARTS)
    for chart in CHARTS:
        entry = recipe[chart.name]
        sources = {case["from"] for case in entry["cases"].values()}
        left_out = entry.get("left_out") or {}
        ci_files = {values.name for values in helm.ci_values_files(chart)}
        assert sources.isdisjoint(left_out), chart.name
        assert sources | set(left_out) == ci_files, chart.name
        for name, reason in left_out.items():
            assert len(reason.split()) >= 8, f"{chart.name}/ci/{name}: say why it is left out"
        assert install_cases.BASE_VALUES in sources, f"{chart.name}: the node case"


def _changed_keys(base: object, other: object, prefix: str = "") -> set[str]:
    """Dotted keys where `other` differs from `base` (a whole subtree once it differs in type)."""
    if isinstance(base, dict) and isinstance(other, dict):
        keys: set[str] = set()
        for key in set(base) | set(other):
            keys |= _changed_keys(base.get(key), other.get(key), f"{prefix}{key}.")
        return keys
    return set() if base == other else {prefix.removesuffix(".")}


def _under(key: str, roots: set[str]) -> bool:
    return any(key == root or key.startswith(f"{root}.") for root in roots)


@pytest.mark.parametrize("chart", CHARTS, ids=lambda chart: chart.name)
def test_each_install_case_is_node_values_with_its_ci_files_feature(chart, tmp_path):
    """The case differs from node-values.yaml only where it takes its ci file's values (equal
    to them) or sets its own; it renders with only the node's local images, never pulled."""
    node = install_cases.ci_values(chart.name, install_cases.BASE_VALUES)
    tree = install_cases.write_work_tree(tmp_path / "ct")
    case_chart = tree / install_cases.CHART_DIR / chart.name
    written = {values.name for values in (case_chart / "ci").glob("*-values.yaml")}
    cases = install_cases.recipe()[chart.name]["cases"]
    assert written == {f"{name}-values.yaml" for name in cases}
    for name, case in cases.items():
        values_file = case_chart / "ci" / f"{name}-values.yaml"
        values = install_cases.yaml.safe_load(values_file.read_text())
        source = install_cases.ci_values(chart.name, case["from"])
        sets = install_cases.set_keys(chart.name, case)
        taken, set_keys = set(case.get("take", [])), set(sets)
        for key in taken:
            expected = {"_": install_cases.lookup(source, key)}
            for set_key, value in sets.items():
                if _under(set_key, {key}):
                    install_cases.put(expected, f"_{set_key.removeprefix(key)}", value)
            assert install_cases.lookup(values, key) == expected["_"], key
        stray = {k for k in _changed_keys(node, values) if not _under(k, taken | set_keys)}
        assert not stray, f"{name}: differs from node-values.yaml at {sorted(stray)}"
        for obj in helm.Helm.pinned().template(case_chart, [values_file]):
            spec = obj.get("spec", {})
            pod = spec.get("template", {}).get("spec", spec)
            for container in pod.get("initContainers", []) + pod.get("containers", []):
                where = f"{name}: {obj['kind']} {container['name']}"
                assert container["image"] in LOCAL_IMAGES, where
                assert container.get("imagePullPolicy") == "Never", where


@dataclass
class Step:
    """One command ct ran (`>>> ...` with debug on), its output and how long it took."""

    command: list[str]
    started: float
    ended: float = 0.0
    output: list[str] = field(default_factory=list)

    def option(self, name: str) -> str | None:
        return self.command[self.command.index(name) + 1] if name in self.command else None


def _run_ct(tree: Path, kubeconfig: Path) -> tuple[int, list[Step], list[str]]:
    """Runs `ct install` in the work tree, printing each line with its time; ct's steps."""
    tools = paths.tools_bin()
    env = {
        **os.environ,
        "PATH": f"{tools}{os.pathsep}{os.environ['PATH']}",
        "KUBECONFIG": str(kubeconfig),
        "CT_CONFIG_DIR": str(tools.parent / "ct"),
    }
    command = [str(paths.tool("ct")), "install", "--config", "ct-install.yaml"]
    print(f"$ cd {tree} && KUBECONFIG={kubeconfig} PATH={tools}:$PATH {' '.join(command)}")
    process = subprocess.Popen(
        command,
        cwd=tree,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    timer = threading.Timer(CT_TIMEOUT_SECONDS, process.kill)
    timer.start()
    start = time.monotonic()
    steps: list[Step] = []
    lines: list[str] = []
    assert process.stdout is not None
    try:
        for raw in process.stdout:
            line = raw.rstrip("\n")
            now = time.monotonic() - start
            print(f"[ct {now:7.1f}s] {line}", flush=True)
            lines.append(line)
            if line.startswith(">>> "):
                if steps:
                    steps[-1].ended = now
                steps.append(Step(line[4:].split(), now))
            elif steps:
                steps[-1].output.append(line)
        returncode = process.wait()
    finally:
        timer.cancel()
    if steps:
        steps[-1].ended = time.monotonic() - start
    return returncode, steps, lines


@dataclass
class Release:
    """What ct did with one release: its chart, values file, namespace and steps."""

    name: str
    chart: str
    values: str
    namespace: str
    steps: list[Step] = field(default_factory=list)

    def verbs(self) -> list[str]:
        return [step.command[1] for step in self.steps if step.command[0] == "helm"]

    def seconds(self, *command: str) -> float:
        """Time in the steps whose command starts with `command`."""
        return sum(
            s.ended - s.started for s in self.steps if s.command[: len(command)] == [*command]
        )


def _releases(steps: list[Step]) -> dict[str, Release]:
    """ct's releases from its helm commands; a release's steps run until its namespace is gone."""
    releases: dict[str, Release] = {}
    current: Release | None = None
    for step in steps:
        if step.command[:2] == ["helm", "install"]:
            name, chart = step.command[2], Path(step.command[3]).name
            values = Path(step.option("--values") or "").name
            current = releases[name] = Release(name, chart, values, step.option("--namespace"))
        if current is not None:
            current.steps.append(step)
            if (
                step.command[0] == "kubectl"
                and "delete" in step.command
                and (current.namespace in step.command)
            ):
                current = None
    return releases


def test_ct_install_installs_tests_and_uninstalls_every_case(node_cluster, tmp_path):
    from kubernetes import client

    from tooling import kube

    tree = install_cases.write_work_tree(tmp_path / "ct")
    returncode, steps, lines = _run_ct(tree, node_cluster.kubeconfig)
    tail = "\n".join(lines[-80:])
    assert returncode == 0, tail
    assert "All charts installed successfully" in "\n".join(lines), tail
    releases = _releases(steps)
    recipe = install_cases.recipe()
    print("\nchart           case        install   test uninst ns-del  total (s)")
    for chart, entry in recipe.items():
        chart_total = 0.0
        has_tests = (tree / install_cases.CHART_DIR / chart / "templates" / "tests").is_dir()
        for case in entry["cases"]:
            values = f"{case}-values.yaml"
            runs = [r for r in releases.values() if r.chart == chart and r.values == values]
            assert [r.verbs() for r in runs] == [["install", "test", "uninstall"]], (
                f"{chart} {case}"
            )
            for release in runs:
                for test in (s for s in release.steps if s.command[:2] == ["helm", "test"]):
                    output = "\n".join(test.output)
                    assert "TEST SUITE:" in output, output
                    if has_tests:  # the chart's test pods ran and passed
                        assert re.search(r"Phase:\s+Succeeded", output), output
                    else:
                        assert "TEST SUITE: None" in output, output
                    assert not re.search(r"Phase:\s+Failed", output), output
            total = sum(r.steps[-1].ended - r.steps[0].started for r in runs)
            chart_total += total
            columns = [("helm", verb) for verb in ("install", "test", "uninstall")]
            columns.append(("kubectl", f"--request-timeout={CT_KUBECTL_TIMEOUT}", "delete"))
            times = " ".join(f"{sum(r.seconds(*c) for r in runs):6.1f}" for c in columns)
            print(f"{chart:15} {case:11} {times}  {total:8.1f}")
        print(f"{chart:15} {'(chart)':11} {'':27}{chart_total:8.1f}")
    core = client.CoreV1Api(kube.api_client(node_cluster.kubeconfig))
    namespaces = {item.metadata.name for item in core.list_namespace().items}
    assert not namespaces & {r.namespace for r in releases.values()}
    listed = subprocess.run(
        [str(paths.tool("helm")), "list", "--all-namespaces", "--short", *HELM_LIST_ALL],
        env={**os.environ, "KUBECONFIG": str(node_cluster.kubeconfig)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.split()
    assert not set(listed) & set(releases)
    scheduling = client.SchedulingV1Api(kube.api_client(node_cluster.kubeconfig))
    classes = [item.metadata.name for item in scheduling.list_priority_class().items]
    assert not [name for name in classes if any(release in name for release in releases)]


@pytest.mark.parametrize("chart", CHARTS, ids=lambda chart: chart.name)
def test_helm_test_pods_are_not_selected_by_the_charts_workloads(chart):
    """A `helm test` pod carrying the selector labels was counted by the PDB (the real run's
    UnmanagedPods warning) and by the HPA's Deployment selector while the test ran."""
    objects = helm.Helm.pinned().template(chart, [chart / "ci" / install_cases.BASE_VALUES])
    selectors = [
        (obj["kind"], obj["spec"]["selector"].get("matchLabels", obj["spec"]["selector"]))
        for obj in objects
        if obj["kind"] in {"Deployment", "PodDisruptionBudget", "Service", "Job"}
        and obj["spec"].get("selector")
    ]
    tests = [
        obj
        for obj in objects
        if obj["kind"] == "Pod"
        and obj["metadata"].get("annotations", {}).get("helm.sh/hook") == "test"
    ]
    for pod in tests:
        labels = pod["metadata"].get("labels", {})
        for kind, selector in selectors:
            assert not selector.items() <= labels.items(), f"{pod['metadata']['name']}: {kind}"
