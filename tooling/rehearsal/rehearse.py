"""`resnet-serving rehearse`: the autoscaling story on the local rehearsal cluster.

The rehearsal target: kwok's control plane (real apiserver, controller-manager with the real
HPA controller, scheduler, metrics-server) with a node pool of simulated e2-standard-4 nodes at
its min size, the real Cluster Autoscaler (or, where it is not built, the rehearsal's stand-in)
adding and removing nodes, and the load: real Locust against the replica fleet (`locust`,
tooling.rehearsal.locust_load), or the analytical load model (`model`, for runs too large for
one machine). Pods run no containers here. The story itself — install, load,
record, scale back in — is the one every cluster runs (tooling.runs.story).
"""

from __future__ import annotations

import contextlib
import math
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from kubernetes import client

from tooling import calibration, releases
from tooling.fleet.endpoints import Fleet
from tooling.fleet.replicas import ModelCost
from tooling.fleet.usage import UsageWriter
from tooling.kube import api_client
from tooling.loadgen.load_shapes import (
    Shape,
    shape_seconds,
    spec_of,
    think_seconds,
    wait_environment,
)
from tooling.names import LOAD_RELEASE, SERVER_URL
from tooling.quantities import cpu_cores
from tooling.rehearsal import cluster_autoscaler, components
from tooling.rehearsal.cluster import (
    E2_STANDARD_4,
    ControlPlaneSupervisor,
    create_cluster,
    delete_cluster,
)
from tooling.rehearsal.load_driver import LoadDriver, cores_per_pod
from tooling.rehearsal.locust_load import FleetLocustLoad
from tooling.rehearsal.node_autoscalers import NodePool, node_autoscaler
from tooling.rehearsal.profiles import Profile
from tooling.runs.locust_load import LocustSettings
from tooling.runs.story import (
    LAB_VALUES,
    StoryContext,
    StoryResult,
    StorySpec,
    StoryTarget,
    run_story,
)

# Pods run no containers here, so the model is never fetched; the URI only has to be valid.
REHEARSAL_MODEL_URI = "https://rehearsal.invalid/image_classifier.tar.gz"
# The Locust chart's pods are simulated too (its master and workers run on this machine, or
# the load model stands in for them); small requests keep them from taking the room the model
# server's replicas scale into.
SMALL = {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}}
LOADS = ("locust", "model")
LOCUST_WORKERS = 2
LOCUST_MARGIN_SECONDS = 30  # --run-time past the shape's end (the shape ends the run itself)


@dataclass(frozen=True)
class RehearsalSpec:
    run_dir: Path
    profile: Profile
    shape: Shape
    values_files: tuple[Path, ...] = (LAB_VALUES,)
    pool: NodePool = field(default_factory=NodePool)
    node_autoscaler: str = "auto"  # auto, cluster-autoscaler or stand-in
    cluster_name: str = "resnet-rehearsal"
    scale_in_timeout: float | None = None  # seconds after load stops; default from the profile
    keep_cluster: bool = False
    kubeconfig: Path | None = None  # where the cluster's kubeconfig goes (run_dir/kubeconfig)
    load: str = "locust"  # locust: real Locust on the replica fleet; model: the load model


def locust_settings(spec: RehearsalSpec) -> LocustSettings:
    """The Locust chart's run for the rehearsal's shape (its end bounds the run time)."""
    shape, environment, shape_file = spec_of(spec.shape)
    environment.update(wait_environment())
    run_time = f"{math.ceil(shape_seconds(spec.shape)) + LOCUST_MARGIN_SECONDS}s"
    return LocustSettings(shape, environment, shape_file, LOCUST_WORKERS, run_time)


def locust_values(spec: RehearsalSpec) -> dict:
    values = locust_settings(spec).values(SERVER_URL)
    values["master"] = {"resources": SMALL}
    values["worker"]["resources"] = SMALL
    return values


def scale_in_timeout(spec: RehearsalSpec) -> float:
    """Enough for the HPA's stabilization and the node group's scale-down of every node."""
    profile = spec.profile
    scale_down = profile.scale_down(spec.pool.autoscaling_profile)
    return spec.scale_in_timeout or (
        profile.hpa_downscale_stabilization_seconds
        + scale_down.delay_after_add_seconds
        + scale_down.unneeded_seconds * spec.pool.max_nodes
        + 10 * profile.scan_interval_seconds
        + 60
    )


def locust_on_the_fleet(spec: RehearsalSpec, context: StoryContext) -> FleetLocustLoad:
    """The Locust chart installed (its pods simulated), its master and workers run here
    against the replica fleet, which writes each replica's CPU from its work."""
    values = locust_values(spec)
    releases.install(context.kubeconfig, LOAD_RELEASE, "locust", context.namespace, values)
    fleet = Fleet(
        client.CoreV1Api(context.api),
        client.DiscoveryV1Api(context.api),
        context.namespace,
        context.server_name,
        ModelCost.measured(calibration.load()),
        cpu_cores(E2_STANDARD_4["allocatable"]["cpu"]),
    )
    usage = UsageWriter(
        fleet,
        context.selector,
        spec.profile.metric_resolution_seconds,
        spec.profile.usage_update_seconds,
    )
    return FleetLocustLoad(fleet, usage, locust_settings(spec), values, spec.run_dir / "locust")


def simulated_load(spec: RehearsalSpec, context: StoryContext) -> LoadDriver:
    """The Locust chart (its pods simulated like the rest) and the load model's driver."""
    releases.install(
        context.kubeconfig, LOAD_RELEASE, "locust", context.namespace, locust_values(spec)
    )
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
        think_seconds(),
    )


@contextlib.contextmanager
def rehearsal_target(
    spec: RehearsalSpec, say: Callable[[str], None] = print
) -> Iterator[StoryTarget]:
    """A running rehearsal cluster as a story target; deleted afterwards unless kept."""
    profile, pool = spec.profile, spec.pool
    try:  # Ctrl-C or a failure while the cluster starts cleans up too
        cluster = create_cluster(
            spec.cluster_name, spec.kubeconfig or spec.run_dir / "kubeconfig", profile, say
        )
        core = client.CoreV1Api(api_client(cluster.kubeconfig))
        nodes = node_autoscaler(
            spec.node_autoscaler, core, cluster.name, cluster.kubeconfig, profile, pool
        )
        nodes.start()
        say(
            f"rehearsal: ✓ control plane up; e2-standard-4 pool at {pool.min_nodes} "
            f"(max {pool.max_nodes}); node autoscaler: {nodes.name} "
            f"({pool.autoscaling_profile})"
        )
        yield StoryTarget(
            provider="rehearsal",
            kubeconfig=cluster.kubeconfig,
            start_load=lambda context: (
                locust_on_the_fleet if spec.load == "locust" else simulated_load
            )(spec, context),
            node_autoscaler=f"{nodes.name}, {pool.autoscaling_profile}",
            ready_timeout=300,
            scale_in_timeout=scale_in_timeout(spec),
            sample_seconds=profile.sample_seconds,
            server_values=(
                {"model": {"source": {"uri": REHEARSAL_MODEL_URI, "existingClaim": ""}}},
            ),
            settled=nodes.settled,
            background=(nodes.run, ControlPlaneSupervisor(cluster.name, say).run),
            collect=lambda run_dir: keep_autoscaler_log(spec.cluster_name, run_dir),
        )
    finally:
        if not spec.keep_cluster:
            delete_cluster(spec.cluster_name)


def keep_autoscaler_log(cluster_name: str, run_dir: Path) -> None:
    """The real autoscaler's log goes into the run directory (the cluster's folder does not
    outlive the cluster)."""
    log = components.log_file(cluster_name, cluster_autoscaler.BINARY)
    if log.is_file():
        run_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(log, run_dir / log.name)


def rehearse(spec: RehearsalSpec, say: Callable[[str], None] = print) -> StoryResult:
    with rehearsal_target(spec, say) as target:
        return run_story(target, StorySpec(spec.run_dir, spec.values_files), say)
