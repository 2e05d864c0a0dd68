"""The rehearsal's node autoscaler: the real Cluster Autoscaler where `make setup-rehearsal`
built it, else the stand-in (RehearsalNodeGroupController, the CA FAQ's rules in Python).

Either one keeps an e2-standard-4 node group between its min and max size, under the
profile's timings and one of GKE's autoscaling profiles. Which one ran is never hidden: its
`name` goes into the progress lines, run.json and the summary.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from kubernetes import client

from tooling.errors import UserError
from tooling.kube import node_condition_ready
from tooling.quantities import cpu_cores, memory_bytes
from tooling.rehearsal import cluster_autoscaler, components
from tooling.rehearsal.cluster import E2_STANDARD_4, NODE_GROUP_LABEL
from tooling.rehearsal.node_group_controller import RehearsalNodeGroupController
from tooling.rehearsal.node_group_rules import GroupRules, Resources
from tooling.rehearsal.profiles import Profile
from tooling.waiting import wait_until_ready

CHOICES = ("auto", "cluster-autoscaler", "stand-in")
STARTUP_TIMEOUT_SECONDS = 60
STAND_IN_NAME = "stand-in (RehearsalNodeGroupController, the Cluster Autoscaler FAQ's rules)"
NOT_BUILT = (
    "the real cluster-autoscaler is not built: set RESNET_SERVING_CLUSTER_AUTOSCALER_GIT and "
    "RESNET_SERVING_AUTOSCALER_GIT to git clones of kubernetes-sigs/cluster-autoscaler and "
    "kubernetes/autoscaler, run `make setup-rehearsal`, or use --node-autoscaler stand-in"
)


@dataclass(frozen=True)
class NodePool:
    """The rehearsal's one node group."""

    min_nodes: int = 1
    max_nodes: int = 3
    autoscaling_profile: str = "balanced"  # GKE's: balanced or optimize-utilization
    group: str = "pool"

    def __post_init__(self) -> None:
        if not 0 <= self.min_nodes <= self.max_nodes or self.max_nodes < 1:
            raise UserError(
                f"--min-nodes {self.min_nodes} / --max-nodes {self.max_nodes}: "
                "need 0 ≤ min ≤ max and max ≥ 1"
            )


class NodeAutoscaler(Protocol):
    name: str  # what scales the nodes, as the run's report names it

    def start(self) -> None:
        """The group at its min size and the autoscaler running."""

    def run(self, stop: threading.Event) -> None:
        """What it does while the story runs (a background loop)."""

    def settled(self) -> bool:
        """No node on its way (being provisioned or booting)."""

    def stop(self) -> None:
        """It scales no more (before its cluster is deleted)."""


def group_nodes(core: client.CoreV1Api, group: str) -> list[client.V1Node]:
    return core.list_node(label_selector=f"{NODE_GROUP_LABEL}={group}").items


@dataclass
class RealClusterAutoscaler:
    """kubernetes-sigs/cluster-autoscaler (kwok cloud provider) as a cluster process."""

    core: client.CoreV1Api
    cluster_name: str
    kubeconfig: Path
    profile: Profile
    pool: NodePool
    name: str = field(default_factory=lambda: f"cluster-autoscaler {cluster_autoscaler.version()}")

    def start(self) -> None:
        pool = self.pool
        cluster_autoscaler.apply_config_maps(
            self.core,
            cluster_autoscaler.config_maps(
                pool.group, pool.min_nodes, pool.max_nodes, self.profile.node_provisioning_seconds
            ),
        )
        existing = {node.metadata.name for node in group_nodes(self.core, pool.group)}
        free_names = (
            name
            for name in (f"{pool.group}-{index}" for index in itertools.count(1))
            if name not in existing
        )
        for name in itertools.islice(free_names, max(0, pool.min_nodes - len(existing))):
            self.core.create_node(cluster_autoscaler.pool_node(name, pool.group))
        cluster_autoscaler.start(
            self.cluster_name, self.kubeconfig, self.profile, pool.autoscaling_profile
        )
        self.wait_until_working()

    def wait_until_working(self, timeout: float = STARTUP_TIMEOUT_SECONDS) -> None:
        """Until its first loop has written its status ConfigMap; fails if it exits first."""
        wait_until_ready(
            "cluster-autoscaler",
            "its first status (ConfigMap)",
            lambda: cluster_autoscaler.status_written(self.core),
            running=self.running,
            log=components.log_file(self.cluster_name, cluster_autoscaler.BINARY),
            timeout=timeout,
            period=0.5,
        )

    def running(self) -> bool:
        return components.running_pid(self.cluster_name, cluster_autoscaler.BINARY) is not None

    def check_running(self) -> None:
        if not self.running():
            last = components.log_tail(self.cluster_name, cluster_autoscaler.BINARY, lines=1)
            raise UserError(
                f"cluster-autoscaler exited ({last or 'no log'}); its log: "
                f"{components.log_file(self.cluster_name, cluster_autoscaler.BINARY)}"
            )

    def run(self, stop: threading.Event) -> None:
        """Watches the process: an autoscaler that exits mid-run fails the run, with its log."""
        while not stop.wait(1.0):
            self.check_running()

    def settled(self) -> bool:
        return all(node_condition_ready(node) for node in group_nodes(self.core, self.pool.group))

    def stop(self) -> None:
        """Nothing: its process goes with the cluster's."""


@dataclass
class StandInNodeAutoscaler:
    """The rehearsal's own controller, for machines without the real autoscaler. Like the real
    one's process, it scales from `start` on, in a thread of its own: a release's
    overprovisioning placeholders need their node before any load begins."""

    controller: RehearsalNodeGroupController
    name: str = STAND_IN_NAME
    stopped: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    failure: BaseException | None = None

    def start(self) -> None:
        self.controller.ensure_min_size()
        self.thread = threading.Thread(target=self._scale, daemon=True)
        self.thread.start()

    def _scale(self) -> None:
        try:
            self.controller.scan_until(self.stopped)  # `start` made the group's min size
        except BaseException as error:  # raised in the run's thread by `run`
            self.failure = error

    def run(self, stop: threading.Event) -> None:
        """Watches the controller's thread: a controller that fails mid-run fails the run."""
        while not stop.wait(1.0):
            if self.failure is not None:
                raise self.failure

    def settled(self) -> bool:
        return not self.controller.provisioning

    def stop(self) -> None:
        self.stopped.set()
        if self.thread is not None:
            self.thread.join(timeout=30)


def stand_in(core: client.CoreV1Api, profile: Profile, pool: NodePool) -> StandInNodeAutoscaler:
    """The stand-in with the profile's timings and the autoscaling profile's scale-down."""
    allocatable = E2_STANDARD_4["allocatable"]
    scale_down = profile.scale_down(pool.autoscaling_profile)
    rules = GroupRules(
        min_size=pool.min_nodes,
        max_size=pool.max_nodes,
        template=Resources(cpu_cores(allocatable["cpu"]), memory_bytes(allocatable["memory"])),
        utilization_threshold=scale_down.utilization_threshold,
        unneeded_seconds=scale_down.unneeded_seconds,
        delay_after_add_seconds=scale_down.delay_after_add_seconds,
    )
    controller = RehearsalNodeGroupController(
        core, pool.group, rules, profile.scan_interval_seconds, profile.node_provisioning_seconds
    )
    return StandInNodeAutoscaler(controller)


def node_autoscaler(
    choice: str,
    core: client.CoreV1Api,
    cluster_name: str,
    kubeconfig: Path,
    profile: Profile,
    pool: NodePool,
) -> NodeAutoscaler:
    """`auto`: the real one when built, else the stand-in; or exactly the one asked for."""
    if choice not in CHOICES:
        raise UserError(f"--node-autoscaler {choice!r}: use one of {', '.join(CHOICES)}")
    if choice == "stand-in" or (choice == "auto" and cluster_autoscaler.binary() is None):
        return stand_in(core, profile, pool)
    if cluster_autoscaler.binary() is None:
        raise UserError(NOT_BUILT)
    return RealClusterAutoscaler(core, cluster_name, kubeconfig, profile, pool)
