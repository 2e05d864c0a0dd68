"""The rehearsal's node autoscalers, short of a cluster: how the profiles map onto the real
Cluster Autoscaler's flags and the stand-in's rules, the kwok provider's ConfigMaps, and the
process handling that lets `cluster delete` stop the autoscaler (a real process)."""

from __future__ import annotations

import sys

import pytest
import yaml

from tooling.errors import UserError
from tooling.rehearsal import cluster_autoscaler, components
from tooling.rehearsal.cluster import E2_STANDARD_4, NODE_BOOT_ANNOTATION, NODE_GROUP_LABEL
from tooling.rehearsal.node_autoscalers import NodePool, node_autoscaler, stand_in
from tooling.rehearsal.profiles import PROFILES, profile
from tooling.waiting import wait_until_ready


def flag_values(argv: list[str]) -> dict[str, str]:
    return dict(arg.removeprefix("--").split("=", 1) for arg in argv[1:])


def test_lab_profile_gives_the_autoscaler_its_own_defaults():
    flags = profile("lab").cluster_autoscaler_args()
    assert flags == {
        "scan-interval": "10s",
        "scale-down-unneeded-time": "600s",
        "scale-down-delay-after-add": "600s",
        "scale-down-utilization-threshold": "0.5",
    }


def test_fast_profile_compresses_the_scale_down_timers_the_stand_in_uses():
    fast = profile("fast")
    flags = fast.cluster_autoscaler_args()
    assert flags["scan-interval"] == f"{fast.scan_interval_seconds:g}s"
    assert flags["scale-down-unneeded-time"] == f"{fast.scale_down_unneeded_seconds:g}s"
    assert flags["unremovable-node-recheck-timeout"] == flags["scale-down-delay-after-failure"]
    rules = stand_in(None, fast, NodePool()).controller.rules
    assert rules.unneeded_seconds == fast.scale_down_unneeded_seconds
    assert rules.delay_after_add_seconds == fast.scale_down_delay_after_add_seconds


@pytest.mark.parametrize("name", list(PROFILES))
def test_optimize_utilization_scales_down_sooner_and_more_for_both_autoscalers(name):
    timings = profile(name)
    balanced, eager = timings.scale_down("balanced"), timings.scale_down("optimize-utilization")
    assert eager.unneeded_seconds < balanced.unneeded_seconds
    assert eager.delay_after_add_seconds < balanced.delay_after_add_seconds
    assert eager.utilization_threshold > balanced.utilization_threshold
    flags = timings.cluster_autoscaler_args("optimize-utilization")
    assert flags["scale-down-unneeded-time"] == f"{eager.unneeded_seconds:g}s"
    assert flags["scale-down-utilization-threshold"] == f"{eager.utilization_threshold}"
    rules = stand_in(None, timings, NodePool(autoscaling_profile="optimize-utilization"))
    assert rules.controller.rules.utilization_threshold == eager.utilization_threshold
    with pytest.raises(UserError, match="balanced, optimize-utilization"):
        timings.scale_down("eager")


def test_the_kwok_provider_reads_one_e2_standard_4_template_with_the_pool_sizes():
    provider, templates = cluster_autoscaler.config_maps("pool", 1, 3, boot_seconds=8)
    config = yaml.safe_load(provider["data"]["config"])
    assert config["readNodesFrom"] == "configmap"
    assert config["nodegroups"] == {"fromNodeLabelKey": NODE_GROUP_LABEL}
    assert config["configmap"]["name"] == templates["metadata"]["name"]
    listed = yaml.safe_load(templates["data"]["templates"])
    assert listed["kind"] == "List"  # one template must come as a List
    (node,) = listed["items"]
    assert node["metadata"]["labels"][NODE_GROUP_LABEL] == "pool"
    assert node["status"]["allocatable"] == E2_STANDARD_4["allocatable"]
    annotations = node["metadata"]["annotations"]
    sizes = [annotations[cluster_autoscaler.SIZE_ANNOTATION.format(s)] for s in ("min", "max")]
    assert sizes == ["1", "3"]
    assert annotations[cluster_autoscaler.SIZE_ANNOTATION.format("desired")] == "1"
    assert annotations[NODE_BOOT_ANNOTATION] == "8s"


def test_the_pools_first_nodes_are_ones_the_autoscaler_counts():
    node = cluster_autoscaler.pool_node("pool-1", "pool")
    assert node["spec"]["providerID"] == "kwok:pool-1"
    assert node["metadata"]["annotations"][cluster_autoscaler.GROUP_ANNOTATION] == "pool"
    assert NODE_BOOT_ANNOTATION not in node["metadata"]["annotations"]  # Ready at once


def test_asking_for_the_real_autoscaler_where_it_is_not_built_says_how(monkeypatch, tmp_path):
    monkeypatch.setenv("RESNET_SERVING_TOOLS", str(tmp_path))  # a tools folder without it
    fast = profile("fast")
    chosen = node_autoscaler("auto", None, "c", tmp_path / "kubeconfig", fast, NodePool())
    assert chosen.name.startswith("stand-in")
    with pytest.raises(UserError, match="RESNET_SERVING_CLUSTER_AUTOSCALER_GIT"):
        node_autoscaler("cluster-autoscaler", None, "c", tmp_path / "k", fast, NodePool())
    with pytest.raises(UserError, match="min ≤ max"):
        NodePool(min_nodes=4, max_nodes=3)


def wait_for_log(cluster: str, component: str, line: str) -> None:
    wait_until_ready(
        component,
        f"it to print {line!r}",
        lambda: components.log_tail(cluster, component) == line,
        running=lambda: components.running_pid(cluster, component) is not None,
        log=components.log_file(cluster, component),
        timeout=10,
        period=0.05,
    )


def test_a_component_is_stopped_by_cluster_name_from_its_pid_file(monkeypatch, tmp_path):
    monkeypatch.setenv("KWOK_WORKDIR", str(tmp_path))
    argv = [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(300)"]
    process = components.start("c1", "sleeper", argv, {})
    assert process is not None
    assert components.start("c1", "sleeper", argv, {}) is None  # one per cluster
    wait_for_log("c1", "sleeper", "up")
    pid = components.running_pid("c1", "sleeper")
    assert pid == process.pid
    assert components.pid_file("c1", "sleeper").parent == tmp_path / "clusters" / "c1" / "pids"
    components.stop("c1", "sleeper")
    assert process.wait(timeout=5) is not None
    assert components.running_pid("c1", "sleeper") is None
    assert not components.pid_file("c1", "sleeper").exists()


def test_a_component_that_ignores_sigterm_is_killed(monkeypatch, tmp_path):
    monkeypatch.setenv("KWOK_WORKDIR", str(tmp_path))
    monkeypatch.setattr(components, "STOP_SECONDS", 0.5)
    stubborn = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('ignoring SIGTERM', flush=True); time.sleep(300)"
    )
    process = components.start("c2", "stubborn", [sys.executable, "-c", stubborn], {})
    wait_for_log("c2", "stubborn", "ignoring SIGTERM")
    components.stop("c2", "stubborn")
    assert process.wait(timeout=5) == -9
