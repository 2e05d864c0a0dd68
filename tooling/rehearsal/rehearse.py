"""`resnet-serving rehearse`: the autoscaling story on the local rehearsal cluster.

The rehearsal target: kwok's control plane (real apiserver, controller-manager with the real
HPA controller, scheduler, metrics-server) with a node pool of simulated e2-standard-4 nodes at
its min size, the real Cluster Autoscaler (or, where it is not built, the rehearsal's stand-in)
adding and removing nodes, and the load: real Locust against the replica fleet (`locust`,
tooling.rehearsal.fleet_load), or the analytical load model (`model`, for runs too large for
one machine). Pods run no containers here. The story itself — install, load,
record, scale back in — is the one every cluster runs (tooling.runs.story).

When the release's values ask for KEDA mode (`autoscaling.metric: requests` with
`autoscaling.requests.keda.enabled`), the target also runs the real Prometheus, scraping each
simulated replica's TF Serving metrics at the fleet (tooling.rehearsal.request_metrics), and
the real KEDA operator and metrics API server (tooling.rehearsal.keda), after the cluster is up
and before the release is installed, and points the ScaledObject at that Prometheus. Nothing
falls back to CPU: a missing part fails the run in one line.

`start_cluster` is the one way a rehearsal cluster starts: `cluster create` and the story's
target (`rehearse`, `up`) both use it.
"""

from __future__ import annotations

import contextlib
import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from kubernetes import client

from tooling import calibration, releases
from tooling.console import Say
from tooling.errors import UserError
from tooling.fleet.endpoints import Fleet
from tooling.fleet.replicas import ModelCost
from tooling.fleet.usage import UsageWriter
from tooling.kube import api_client
from tooling.loadgen.run import free_port
from tooling.names import APP_NAMESPACE, LOAD_RELEASE, SERVER_URL
from tooling.quantities import cpu_cores
from tooling.rehearsal import cluster_autoscaler, components, keda, prometheus, request_metrics
from tooling.rehearsal.cluster import (
    E2_STANDARD_4,
    ControlPlaneSupervisor,
    create_cluster,
    delete_cluster,
)
from tooling.rehearsal.fleet_load import FleetLocustLoad
from tooling.rehearsal.load_driver import LoadDriver, cores_per_pod
from tooling.rehearsal.node_autoscalers import NodeAutoscaler, NodePool, node_autoscaler
from tooling.rehearsal.profiles import PROFILES, Profile
from tooling.runs import scaling_signal
from tooling.runs.locust_load import LocustSettings
from tooling.runs.run_spec import RunSpec
from tooling.runs.scaling_signal import RequestScaling
from tooling.runs.target import StoryContext, StoryTarget
from tooling.runs.timeline import LoadSource

# Pods run no containers here, so the model is never fetched; the URI only has to be valid.
REHEARSAL_MODEL_URI = "https://rehearsal.invalid/image_classifier.tar.gz"
MODEL_VALUES = {"model": {"source": {"uri": REHEARSAL_MODEL_URI, "existingClaim": ""}}}
# The Locust chart's pods are simulated too (its master and workers run on this machine, or
# the load model stands in for them); small requests keep them from taking the room the model
# server's replicas scale into.
SMALL = {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}}
# The fast profile's steps are short so a whole run fits in a few minutes; lab keeps the lab's.
STEP_SECONDS = {"fast": 8.0, "lab": 60.0}


@dataclass(frozen=True)
class RehearsalClusterSpec:
    """A rehearsal cluster: its name, where its kubeconfig goes, its timings, its node pool
    and which node autoscaler scales it."""

    kubeconfig: Path
    name: str = "resnet-rehearsal"
    profile: Profile = PROFILES["fast"]
    pool: NodePool = field(default_factory=NodePool)
    node_autoscaler: str = "auto"  # auto, cluster-autoscaler or stand-in


@dataclass(frozen=True)
class StartedCluster:
    name: str
    kubeconfig: Path
    nodes: NodeAutoscaler


def start_cluster(spec: RehearsalClusterSpec, say: Say) -> StartedCluster:
    """The control plane, then the node pool at its min size and its node autoscaler; on a
    failure or Ctrl-C the cluster is deleted, leaving no process or port behind."""
    pool = spec.pool
    nodes: NodeAutoscaler | None = None
    try:
        created = create_cluster(spec.name, spec.kubeconfig, spec.profile, say)
        core = client.CoreV1Api(api_client(created.kubeconfig))
        nodes = node_autoscaler(
            spec.node_autoscaler, core, created.name, created.kubeconfig, spec.profile, pool
        )
        nodes.start()
    except BaseException:
        if nodes is not None:
            nodes.stop()
        delete_cluster(spec.name)
        raise
    say(
        f"rehearsal: ✓ {spec.name}: control plane up; e2-standard-4 pool at {pool.min_nodes} "
        f"(max {pool.max_nodes}); node autoscaler: {nodes.name} ({pool.autoscaling_profile})"
    )
    return StartedCluster(created.name, created.kubeconfig, nodes)


def locust_settings(spec: RehearsalClusterSpec, run: RunSpec) -> LocustSettings:
    """The Locust chart's run, the step shape's step from the profile unless given."""
    return run.load.locust_settings(STEP_SECONDS[spec.profile.name])


def locust_values(settings: LocustSettings) -> dict:
    values = settings.values(SERVER_URL)
    values["master"] = {"resources": SMALL}
    values["worker"]["resources"] = SMALL
    return values


def scale_in_timeout(spec: RehearsalClusterSpec) -> float:
    """Enough for the HPA's stabilization and the node group's scale-down of every node."""
    profile = spec.profile
    scale_down = profile.scale_down(spec.pool.autoscaling_profile)
    return (
        profile.hpa_downscale_stabilization_seconds
        + scale_down.delay_after_add_seconds
        + scale_down.unneeded_seconds * spec.pool.max_nodes
        + 10 * profile.scan_interval_seconds
        + 60
    )


def locust_on_the_fleet(
    spec: RehearsalClusterSpec, run: RunSpec, context: StoryContext, fleet_port: int = 0
) -> FleetLocustLoad:
    """The Locust chart installed (its pods simulated), its master and workers run here
    against the replica fleet, which writes each replica's CPU from its work and serves each
    one's TF Serving metrics (on `fleet_port`, where Prometheus scrapes them; 0: any port)."""
    settings = locust_settings(spec, run)
    values = locust_values(settings)
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
    return FleetLocustLoad(
        fleet, usage, settings, values, run.run_dir / "locust", fleet_port=fleet_port
    )


def simulated_load(spec: RehearsalClusterSpec, run: RunSpec, context: StoryContext) -> LoadDriver:
    """The Locust chart (its pods simulated like the rest) and the load model's driver."""
    values = locust_values(locust_settings(spec, run))
    releases.install(context.kubeconfig, LOAD_RELEASE, "locust", context.namespace, values)
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
        run.load.schedule(STEP_SECONDS[spec.profile.name]),
        measured.cpu_seconds_per_image_batched,
        cores,
        spec.profile.usage_update_seconds,
        run.load.think_seconds,
    )


@dataclass(frozen=True)
class RequestAutoscaling:
    """Prometheus and KEDA, started for a run in KEDA mode."""

    prometheus_url: str
    fleet_port: int  # where the fleet serves the replicas' metrics, as Prometheus scrapes them
    values: dict  # the ScaledObject pointed at this Prometheus
    description: str  # the signal and its components, for the report


def request_scaling_of(run: RunSpec, profile: str) -> RequestScaling | None:
    """The request-driven mode the run's values ask for (None: CPU); refuses, in one line and
    before anything starts, what the rehearsal cannot run."""
    values = [*releases.values_from_files(*run.values_files), MODEL_VALUES]
    scaling = scaling_signal.request_scaling(scaling_signal.merged(values))
    if scaling is None:
        return None
    if not scaling.keda:
        raise UserError(
            "autoscaling.requests.podsMetric (plain HPA mode) needs a custom-metrics adapter, "
            "which the rehearsal does not run: rehearse KEDA mode "
            "(autoscaling.requests.keda.enabled: true, podsMetric.enabled: false)"
        )
    missing = keda.missing_parts()
    if missing:
        raise UserError(
            "KEDA mode (autoscaling.metric: requests) runs the real Prometheus and KEDA, and "
            f"these are not built: {', '.join(missing)}; run `make setup-rehearsal`"
        )
    if run.load.source != "locust":
        raise UserError(
            "KEDA mode scales on the requests the replicas serve, and the load model sends "
            "none: use --load locust"
        )
    request_metrics.check_window(scaling.window, request_metrics.SCRAPE_SECONDS[profile])
    return scaling


def start_request_autoscaling(
    spec: RehearsalClusterSpec,
    started: StartedCluster,
    run: RunSpec,
    scaling: RequestScaling,
    say: Say,
) -> RequestAutoscaling:
    """Prometheus (discovering the release's pods through the API, scraping the fleet) and
    KEDA's operator and metrics API server, as cluster processes."""
    fleet_port = free_port()
    scrape_seconds = request_metrics.SCRAPE_SECONDS[spec.profile.name]
    config = request_metrics.scrape_config(
        started.kubeconfig,
        APP_NAMESPACE,
        fleet_port,
        scrape_seconds,
        prometheus.folder(started.name) / "credentials",
    )
    url = prometheus.start_prometheus(started.name, config)
    keda.start_keda(started.name, started.kubeconfig)
    address = scaling_signal.keda_server_address(url)
    values = [*releases.values_from_files(*run.values_files), MODEL_VALUES, address]
    trigger = scaling_signal.prometheus_trigger(
        scaling_signal.rendered_server_chart(values, APP_NAMESPACE)
    )
    description = request_metrics.describe(
        scaling, keda.describe(), scrape_seconds, trigger["query"]
    )
    say(
        f"rehearsal: ✓ Prometheus {prometheus.version()} at {url} (the release's pods found "
        f"through the API, scraped at the fleet every {scrape_seconds} s); KEDA's operator and "
        "metrics API server up (external.metrics.k8s.io Available)"
    )
    return RequestAutoscaling(url, fleet_port, address, description)


def cpu_signal(spec: RehearsalClusterSpec, run: RunSpec) -> str:
    values = scaling_signal.merged([*releases.values_from_files(*run.values_files), MODEL_VALUES])
    resolution = spec.profile.metric_resolution_seconds
    return f"{scaling_signal.describe(values)}, metrics-server resolution {resolution} s"


def watch_components(
    cluster_name: str, names: tuple[str, ...]
) -> Callable[[threading.Event], None]:
    """A background loop: a component that exits mid-run fails the run, naming its log."""

    def run(stop: threading.Event) -> None:
        while not stop.wait(2.0):
            for name in names:
                if components.running_pid(cluster_name, name) is None:
                    last = components.log_tail(cluster_name, name, lines=1)
                    raise UserError(
                        f"{name} exited ({last or 'no log'}); its log: "
                        f"{components.log_file(cluster_name, name)}"
                    )

    return run


@contextlib.contextmanager
def rehearsal_target(spec: RehearsalClusterSpec, run: RunSpec, say: Say) -> Iterator[StoryTarget]:
    """A started rehearsal cluster as a story target; deleted afterwards when `run.down`
    (also after a failure or Ctrl-C). In KEDA mode, with Prometheus and KEDA running."""
    locust_settings(spec, run)  # a bad shape fails before the cluster starts
    scaling = request_scaling_of(run, spec.profile.name)  # and so does KEDA mode that cannot run
    started = start_cluster(spec, say)
    # From the start, not with the load: a metrics-server that panics while the API server
    # comes up must be started again before the story waits for its metrics.
    supervised = threading.Event()
    supervisor = ControlPlaneSupervisor(started.name, say)
    supervising = threading.Thread(target=supervisor.run, args=(supervised,), daemon=True)
    supervising.start()
    try:
        requests = (
            None if scaling is None else start_request_autoscaling(spec, started, run, scaling, say)
        )
        fleet_port = requests.fleet_port if requests else 0

        def start_load(context: StoryContext) -> LoadSource:
            if run.load.source == "locust":
                return locust_on_the_fleet(spec, run, context, fleet_port)
            return simulated_load(spec, run, context)

        watched = (
            (watch_components(started.name, (prometheus.COMPONENT, *keda.COMPONENTS)),)
            if requests
            else ()
        )
        yield StoryTarget(
            provider="rehearsal",
            kubeconfig=started.kubeconfig,
            start_load=start_load,
            node_autoscaler=f"{started.nodes.name}, {spec.pool.autoscaling_profile}",
            ready_timeout=300,
            scale_in_timeout=scale_in_timeout(spec),
            sample_seconds=spec.profile.sample_seconds,
            server_values=(MODEL_VALUES, *((requests.values,) if requests else ())),
            settled=started.nodes.settled,
            background=(started.nodes.run, *watched),
            collect=lambda run_dir: keep_component_logs(spec.name, run_dir),
            scaling_signal=requests.description if requests else cpu_signal(spec, run),
        )
    finally:
        supervised.set()
        supervising.join(timeout=30)  # not mid-restart while the cluster is deleted
        started.nodes.stop()  # the stand-in's thread ends with the command in any case
        if run.down:
            delete_cluster(spec.name)


# The rehearsal's own processes whose logs go into the run directory.
KEPT_LOGS = (cluster_autoscaler.BINARY, prometheus.COMPONENT, *keda.COMPONENTS)


def keep_component_logs(cluster_name: str, run_dir: Path) -> None:
    """The real autoscaler's log, and Prometheus' and KEDA's when they ran, go into the run
    directory (the cluster's folder does not outlive the cluster)."""
    for component in KEPT_LOGS:
        log = components.log_file(cluster_name, component)
        if log.is_file():
            run_dir.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(log, run_dir / log.name)
