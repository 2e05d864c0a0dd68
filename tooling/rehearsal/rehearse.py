"""`resnet-serving rehearse`: the autoscaling story on the local rehearsal cluster.

The rehearsal target: kwok's control plane (real apiserver, controller-manager with the real
HPA controller, scheduler, metrics-server) with a node pool of simulated e2-standard-4 nodes at
its min size, the rehearsal's node-group controller adding and removing nodes, and the load
model standing in for Locust (pods run no containers here). The story itself — install, load,
record, scale back in — is the one every cluster runs (tooling.runs.story).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from kubernetes import client, config

from tooling import calibration, releases
from tooling.loadgen.load_shapes import Shape
from tooling.rehearsal.cluster import E2_STANDARD_4, create_cluster, delete_cluster
from tooling.rehearsal.load_driver import LoadDriver, cores_per_pod
from tooling.rehearsal.node_group_controller import RehearsalNodeGroupController
from tooling.rehearsal.node_group_rules import GroupRules, Resources
from tooling.rehearsal.profiles import Profile
from tooling.rehearsal.quantities import cpu_cores, memory_bytes
from tooling.runs.story import (
    LAB_VALUES,
    SERVER_NAME,
    StoryContext,
    StoryResult,
    StorySpec,
    StoryTarget,
    run_story,
)

# Pods run no containers here, so the model is never fetched; the URI only has to be valid.
REHEARSAL_MODEL_URI = "https://rehearsal.invalid/image_classifier.tar.gz"
# The Locust pods are simulated too (the load model stands in for them); small requests keep
# them from taking the room the model server's replicas scale into.
SMALL = {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}}
LOCUST_VALUES = {
    "loadtest": {"host": f"http://{SERVER_NAME}:8501"},
    "master": {"resources": SMALL},
    "worker": {"replicas": 1, "resources": SMALL},
}


@dataclass(frozen=True)
class RehearsalSpec:
    run_dir: Path
    profile: Profile
    shape: Shape
    values_files: tuple[Path, ...] = (LAB_VALUES,)
    min_nodes: int = 1
    max_nodes: int = 3
    cluster_name: str = "resnet-rehearsal"
    scale_in_timeout: float | None = None  # seconds after load stops; default from the profile
    keep_cluster: bool = False


def scale_in_timeout(spec: RehearsalSpec) -> float:
    """Enough for the HPA's stabilization and the node group's scale-down of every node."""
    profile = spec.profile
    return spec.scale_in_timeout or (
        profile.hpa_downscale_stabilization_seconds
        + profile.scale_down_delay_after_add_seconds
        + profile.scale_down_unneeded_seconds * spec.max_nodes
        + 10 * profile.scan_interval_seconds
        + 60
    )


def simulated_load(spec: RehearsalSpec, context: StoryContext) -> LoadDriver:
    """The Locust chart (its pods simulated like the rest) and the load model's driver."""
    releases.install(context.kubeconfig, "load", "locust", context.namespace, LOCUST_VALUES)
    apps, core = client.AppsV1Api(context.api), client.CoreV1Api(context.api)
    server = apps.read_namespaced_deployment(context.server_name, context.namespace)
    container = server.spec.template.spec.containers[0]
    limits = (container.resources.limits or {}) if container.resources else {}
    cores = cores_per_pod({"limits": limits}, E2_STANDARD_4["allocatable"]["cpu"])
    measured = calibration.load()
    return LoadDriver(
        core,
        context.namespace,
        context.selector,
        spec.shape,
        measured.cpu_seconds_per_image_batched,
        cores,
        spec.profile.usage_update_seconds,
    )


def node_pool(
    core: client.CoreV1Api, profile: Profile, min_nodes: int, max_nodes: int
) -> RehearsalNodeGroupController:
    """The e2-standard-4 node group and its controller, with the profile's timings."""
    allocatable = E2_STANDARD_4["allocatable"]
    rules = GroupRules(
        min_size=min_nodes,
        max_size=max_nodes,
        template=Resources(cpu_cores(allocatable["cpu"]), memory_bytes(allocatable["memory"])),
        unneeded_seconds=profile.scale_down_unneeded_seconds,
        delay_after_add_seconds=profile.scale_down_delay_after_add_seconds,
    )
    return RehearsalNodeGroupController(
        core, "pool", rules, profile.scan_interval_seconds, profile.node_provisioning_seconds
    )


@contextlib.contextmanager
def rehearsal_target(
    spec: RehearsalSpec, say: Callable[[str], None] = print
) -> Iterator[StoryTarget]:
    """A running rehearsal cluster as a story target; deleted afterwards unless kept."""
    profile = spec.profile
    try:  # Ctrl-C or a failure while the cluster starts cleans up too
        cluster = create_cluster(spec.cluster_name, spec.run_dir / "cluster", profile, say)
        core = client.CoreV1Api(config.new_client_from_config(str(cluster.kubeconfig)))
        nodes = node_pool(core, profile, spec.min_nodes, spec.max_nodes)
        nodes.ensure_min_size()
        say(
            f"rehearsal: ✓ control plane up; e2-standard-4 pool at {spec.min_nodes} "
            f"(max {spec.max_nodes})"
        )
        yield StoryTarget(
            provider="rehearsal",
            kubeconfig=cluster.kubeconfig,
            start_load=lambda context: simulated_load(spec, context),
            node_autoscaling=True,
            ready_timeout=300,
            scale_in_timeout=scale_in_timeout(spec),
            sample_seconds=profile.sample_seconds,
            server_values=(
                {"model": {"source": {"uri": REHEARSAL_MODEL_URI, "existingClaim": ""}}},
            ),
            settled=lambda: not nodes.provisioning,
            background=(nodes.run,),
        )
    finally:
        if not spec.keep_cluster:
            delete_cluster(spec.cluster_name)


def rehearse(spec: RehearsalSpec, say: Callable[[str], None] = print) -> StoryResult:
    with rehearsal_target(spec, say) as target:
        return run_story(target, StorySpec(spec.run_dir, spec.values_files), say)
