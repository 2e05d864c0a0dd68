"""`resnet-serving rehearse`: the whole autoscaling story on the local rehearsal cluster.

Control plane up → app namespace (Pod Security *restricted* enforced) → node pool at its min
size → both charts installed with pyhelm3 → the load shape drives simulated CPU → the real HPA
scales the Deployment, the node-group controller adds nodes for Unschedulable replicas → load
stops → replicas and nodes come back down → timeline.csv and events.csv in the run directory.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kubernetes import client, config

from tooling import calibration, paths, releases
from tooling.loadgen.load_shapes import Shape
from tooling.rehearsal.cluster import (
    APP_NAMESPACE,
    E2_STANDARD_4,
    create_cluster,
    delete_cluster,
)
from tooling.rehearsal.load_driver import LoadDriver, TimelineRecorder, cores_per_pod
from tooling.rehearsal.node_group_controller import RehearsalNodeGroupController
from tooling.rehearsal.node_group_rules import GroupRules, Resources
from tooling.rehearsal.profiles import Profile
from tooling.rehearsal.quantities import cpu_cores, memory_bytes
from tooling.timeline_summary import read_timeline, summarize

RELEASE = "resnet"
SERVER_NAME = f"{RELEASE}-resnet-serving"
SELECTOR = f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/name=resnet-serving"
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
    values_files: tuple[Path, ...] = (
        paths.CHARTS_DIR / "resnet-serving" / "ci" / "lab-values.yaml",
    )
    min_nodes: int = 1
    max_nodes: int = 3
    cluster_name: str = "resnet-rehearsal"
    scale_in_timeout: float | None = None  # seconds after load stops; default from the profile
    keep_cluster: bool = False


@dataclass(frozen=True)
class RehearsalResult:
    timeline: Path
    events: Path
    scaled_in: bool


def _wait(condition: Callable[[], bool], timeout: float, what: str, period: float = 1.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(period)


def rehearse(spec: RehearsalSpec, say: Callable[[str], None] = print) -> RehearsalResult:
    profile = spec.profile
    cluster = create_cluster(spec.cluster_name, spec.run_dir / "cluster", profile, say)
    threads: list[threading.Thread] = []
    stop = threading.Event()
    recorder: TimelineRecorder | None = None
    scaled_in = False
    try:
        api = config.new_client_from_config(str(cluster.kubeconfig))
        core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
        autoscaling = client.AutoscalingV2Api(api)
        say("rehearsal: ✓ control plane up; namespace with Pod Security restricted enforced")
        namespace = {
            "metadata": {
                "name": APP_NAMESPACE,
                "labels": {
                    "pod-security.kubernetes.io/enforce": "restricted",
                    "pod-security.kubernetes.io/enforce-version": "latest",
                },
            }
        }
        try:
            core.create_namespace(namespace)
        except client.ApiException as error:
            if error.status != 409:  # a reused cluster has it already
                raise

        allocatable = E2_STANDARD_4["allocatable"]
        rules = GroupRules(
            min_size=spec.min_nodes,
            max_size=spec.max_nodes,
            template=Resources(cpu_cores(allocatable["cpu"]), memory_bytes(allocatable["memory"])),
            unneeded_seconds=profile.scale_down_unneeded_seconds,
            delay_after_add_seconds=profile.scale_down_delay_after_add_seconds,
        )
        nodes = RehearsalNodeGroupController(
            core, "pool", rules, profile.scan_interval_seconds, profile.node_provisioning_seconds
        )
        nodes.ensure_min_size()
        say(f"rehearsal: ✓ node pool of e2-standard-4 at {spec.min_nodes} (max {spec.max_nodes})")

        values = releases.values_from_files(*spec.values_files)
        values.append({"model": {"source": {"uri": REHEARSAL_MODEL_URI, "existingClaim": ""}}})
        releases.install(cluster.kubeconfig, RELEASE, "resnet-serving", APP_NAMESPACE, *values)
        releases.install(cluster.kubeconfig, "load", "locust", APP_NAMESPACE, LOCUST_VALUES)
        say("rehearsal: ✓ charts installed (helm, server-side validation, PodSecurity admission)")
        _wait(
            lambda: (
                (
                    apps.read_namespaced_deployment(
                        SERVER_NAME, APP_NAMESPACE
                    ).status.ready_replicas
                    or 0
                )
                >= 1
            ),
            300,
            "the first replica to be Ready",
        )

        metrics = client.CustomObjectsApi(api)

        def pod_metrics_served() -> bool:
            try:
                listed = metrics.list_namespaced_custom_object(
                    "metrics.k8s.io", "v1beta1", APP_NAMESPACE, "pods", label_selector=SELECTOR
                )
            except client.ApiException:
                return False
            return bool(listed.get("items"))

        _wait(pod_metrics_served, 120, "metrics-server to serve the replica's metrics")
        say("rehearsal: ✓ metrics-server serves the replica's (kwok-simulated) metrics")
        deployment = apps.read_namespaced_deployment(SERVER_NAME, APP_NAMESPACE)
        server = deployment.spec.template.spec.containers[0]
        cores = cores_per_pod(
            {"limits": (server.resources.limits or {})} if server.resources else {},
            allocatable["cpu"],
        )
        measured = calibration.load()
        driver = LoadDriver(
            core,
            APP_NAMESPACE,
            SELECTOR,
            spec.shape,
            measured.cpu_seconds_per_image_batched,
            cores,
            profile.usage_update_seconds,
        )
        recorder = TimelineRecorder(
            core,
            autoscaling,
            apps,
            APP_NAMESPACE,
            SERVER_NAME,
            SELECTOR,
            driver,
            spec.run_dir,
            profile.sample_seconds,
        )
        for target in (nodes.run, driver.run, recorder.run):
            thread = threading.Thread(target=target, args=(stop,), daemon=True)
            thread.start()
            threads.append(thread)
        say(
            f"rehearsal: load running ({measured.cpu_seconds_per_image_batched:.3f} CPU-s per "
            f"request, {cores:g} cores per replica) …"
        )
        driver.finished.wait()
        say("rehearsal: load stopped; waiting for replicas and nodes to come back down …")
        min_replicas = autoscaling.read_namespaced_horizontal_pod_autoscaler(
            SERVER_NAME, APP_NAMESPACE
        ).spec.min_replicas
        timeout = spec.scale_in_timeout or (
            profile.hpa_downscale_stabilization_seconds
            + profile.scale_down_delay_after_add_seconds
            + profile.scale_down_unneeded_seconds * spec.max_nodes
            + 10 * profile.scan_interval_seconds
            + 60
        )
        scaled_in = True
        try:
            _wait(
                lambda: (
                    bool(recorder.rows)
                    and recorder.rows[-1]["replicas_ready"] <= min_replicas
                    and recorder.rows[-1]["nodes_ready"] <= spec.min_nodes
                    and not nodes.provisioning
                ),
                timeout,
                "scale-in",
                period=2,
            )
        except TimeoutError:
            scaled_in = False
        time.sleep(2 * profile.sample_seconds)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        if not spec.keep_cluster:
            delete_cluster(spec.cluster_name)
        if recorder is not None:  # what was recorded survives a failed run too
            written = recorder.write()
    timeline, events = written
    summary = summarize(read_timeline(timeline))
    (spec.run_dir / "summary.txt").write_text("\n".join(summary.lines()) + "\n")
    say(f"rehearsal: ✓ timeline in {timeline}")
    for line in summary.lines():
        say(f"  {line}")
    return RehearsalResult(timeline, events, scaled_in)
