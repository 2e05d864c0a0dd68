"""The autoscaling story, the same on every cluster: the rehearsal, kind or GKE.

App namespace (Pod Security *restricted* enforced) → the model server's chart installed with
pyhelm3 → first replica Ready and its metrics served → the load starts → the HPA (and, where
there is one, the cluster autoscaler) scale out → the load ends → recording goes on until
replicas and nodes are back at their starting level or a timeout → timeline.csv, events.csv
and summary.txt in the run directory.

What differs between clusters is a StoryTarget (tooling.runs.target): how the load is made
(real Locust on the rehearsal's replica fleet, or its analytic load model; the Locust chart on
real clusters), extra values, timeouts, background work.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kubernetes import client

from tooling import paths, releases
from tooling.errors import cluster_unreachable, one_line
from tooling.kube import api_client
from tooling.names import APP_NAMESPACE, RELEASE, SELECTOR, SERVER_NAME
from tooling.report.run_info import NODE_AUTOSCALER, SCALING_SIGNAL, write_run_info
from tooling.report.run_report import Report, write_report
from tooling.report.summary import TimelineSummary
from tooling.runs import scaling_signal
from tooling.runs.app_namespace import ensure_app_namespace
from tooling.runs.background import BackgroundLoops
from tooling.runs.cluster_state import keep_cluster_state
from tooling.runs.target import StoryContext, StoryTarget
from tooling.runs.timeline import TimelineRecorder, read_server_hpa
from tooling.runs.transient import TRANSIENT_ERRORS
from tooling.waiting import WaitTimeout, wait_for

METRICS_TIMEOUT_SECONDS = 180
LOAD_END_SLACK_SECONDS = 120  # past the load's longest duration before the run gives up


@dataclass(frozen=True)
class StorySpec:
    run_dir: Path
    values_files: tuple[Path, ...] = (paths.LAB_VALUES,)


@dataclass(frozen=True)
class StoryResult:
    timeline: Path
    events: Path
    summary: TimelineSummary
    scaled_in: bool


def server_values(target: StoryTarget, spec: StorySpec) -> list[dict]:
    """The model server's values maps, in helm's order: the files, then the target's."""
    return releases.values_from_files(*spec.values_files) + list(target.server_values)


def install_model_server(target: StoryTarget, spec: StorySpec, api: client.ApiClient) -> None:
    try:
        ensure_app_namespace(client.CoreV1Api(api))
    except TRANSIENT_ERRORS as error:  # the first call to the cluster: is it there at all?
        raise cluster_unreachable(target.kubeconfig, error) from error
    values = server_values(target, spec)
    releases.install(target.kubeconfig, RELEASE, "resnet-serving", APP_NAMESPACE, *values)


def wait_until_serving(target: StoryTarget, api: client.ApiClient) -> None:
    """First replica Ready, metrics-server serving its metrics (the HPA needs them), nothing
    of the release left Pending, and the HPA at rest at its minimum."""
    apps, metrics = client.AppsV1Api(api), client.CustomObjectsApi(api)

    def ready() -> bool:
        status = apps.read_namespaced_deployment(SERVER_NAME, APP_NAMESPACE).status
        return (status.ready_replicas or 0) >= 1

    def pod_metrics_served() -> bool:
        try:
            listed = metrics.list_namespaced_custom_object(
                "metrics.k8s.io", "v1beta1", APP_NAMESPACE, "pods", label_selector=SELECTOR
            )
        except client.ApiException:
            return False
        return bool(listed.get("items"))

    wait_for(
        ready,
        target.ready_timeout,
        "the first replica to be Ready",
        period=2,
        hint=f"see `kubectl describe pods -n {APP_NAMESPACE}` (model fetch, image pull, room)",
    )
    wait_for(
        pod_metrics_served,
        METRICS_TIMEOUT_SECONDS,
        "metrics-server to serve the replica's metrics",
        hint="is metrics-server installed and running? (`kubectl top pods` tells)",
    )
    core = client.CoreV1Api(api)

    def headroom_in_place() -> bool:
        """Every pod of the release scheduled (overprovisioning placeholders may need a node
        of their own first) and no node still being added: the load starts from the
        configuration's resting state, so the run's nodes come back down to it."""
        pods = core.list_namespaced_pod(
            APP_NAMESPACE, label_selector=f"app.kubernetes.io/instance={RELEASE}"
        ).items
        return all(pod.status.phase != "Pending" for pod in pods) and target.settled()

    wait_for(
        headroom_in_place,
        target.ready_timeout,
        "every pod of the release to be scheduled",
        period=2,
        hint=f"see `kubectl get pods -n {APP_NAMESPACE}`: is the node pool's maximum too small "
        "for the overprovisioning placeholders?",
    )
    autoscaling = client.AutoscalingV2Api(api)

    def at_rest() -> bool:
        """The HPA wants its minimum and that many replicas are Ready: a replica's start-up
        CPU (model load, warm-up) may have scaled it out before any load came."""
        hpa = read_server_hpa(autoscaling, APP_NAMESPACE, SERVER_NAME)
        status = apps.read_namespaced_deployment(SERVER_NAME, APP_NAMESPACE).status
        wanted = hpa.status.desired_replicas if hpa.status else None
        return wanted == hpa.spec.min_replicas == (status.ready_replicas or 0)

    wait_for(
        at_rest,
        target.scale_in_timeout,
        "the HPA to rest at its minimum before the load",
        period=2,
        hint=f"see `kubectl describe hpa -n {APP_NAMESPACE}`",
    )


def signal_of(target: StoryTarget, spec: StorySpec) -> str:
    """What the pods scale on: the target's own words, else what the values say."""
    if target.scaling_signal:
        return target.scaling_signal
    return scaling_signal.describe(scaling_signal.merged(server_values(target, spec)))


def run_info(target: StoryTarget, spec: StorySpec) -> dict[str, object]:
    return {
        "provider": target.provider,
        NODE_AUTOSCALER: target.node_autoscaler,
        SCALING_SIGNAL: signal_of(target, spec),
        "values_files": [str(path) for path in spec.values_files],
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def run_story(
    target: StoryTarget, spec: StorySpec, say: Callable[[str], None] = print
) -> StoryResult:
    """Installs, loads, records until scaled back in; writes the run directory."""
    spec.run_dir.mkdir(parents=True, exist_ok=True)
    info = run_info(target, spec)
    write_run_info(spec.run_dir, info)
    api = api_client(target.kubeconfig)
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    autoscaling = client.AutoscalingV2Api(api)
    loops = BackgroundLoops()
    recorder: TimelineRecorder | None = None
    scaled_in, failed = False, True
    try:
        install_model_server(target, spec, api)
        say(
            f"{target.provider}: ✓ model server installed (helm, server-side validation, PSS); "
            f"scaling signal: {info[SCALING_SIGNAL]}"
        )
        wait_until_serving(target, api)
        say(
            f"{target.provider}: ✓ first replica Ready; metrics-server serves its metrics; "
            "every pod scheduled"
        )
        context = StoryContext(api, target.kubeconfig, APP_NAMESPACE, SERVER_NAME, SELECTOR)
        load = target.start_load(context)
        (spec.run_dir / "timeline.csv").unlink(missing_ok=True)  # a new run, a new timeline
        recorder = TimelineRecorder(
            core,
            autoscaling,
            apps,
            APP_NAMESPACE,
            SERVER_NAME,
            SELECTOR,
            load,
            spec.run_dir,
            target.sample_seconds,
        )
        for loop in (*target.background, load.run, recorder.run):
            loops.start(loop)
        say(f"{target.provider}: load running; recording {spec.run_dir / 'timeline.csv'} …")
        loops.wait(load.finished, load.max_seconds + LOAD_END_SLACK_SECONDS, "the load to end")
        say(f"{target.provider}: load ended; waiting for replicas and nodes to come back down …")
        scaled_in = wait_for_scale_in(target, hpa_min_replicas(autoscaling), recorder, loops)
        time.sleep(2 * target.sample_seconds)
        loops.check()
        failed = False
    finally:
        loops.join()
        if failed:
            keep_what_the_cluster_showed(api, spec.run_dir, target.provider, say)
        target.collect(spec.run_dir)
        report = keep_the_record(spec.run_dir, recorder, target.provider, say, failed)
    assert recorder is not None and report is not None  # a run that got here recorded rows
    return StoryResult(recorder.timeline, spec.run_dir / "events.csv", report.summary, scaled_in)


def keep_what_the_cluster_showed(
    api: client.ApiClient, run_dir: Path, provider: str, say: Callable[[str], None]
) -> None:
    """A failed run's cluster-state.txt; a cluster that does not answer is said, not raised,
    so the run's own error is what the user sees."""
    try:
        path = keep_cluster_state(api, APP_NAMESPACE, run_dir)
    except Exception as error:
        say(f"{provider}: what the cluster showed could not be read ({one_line(error)})")
        return
    say(f"{provider}: what the cluster showed at the failure: {path}")


def keep_the_record(
    run_dir: Path,
    recorder: TimelineRecorder | None,
    provider: str,
    say: Callable[[str], None],
    failed: bool = False,
) -> Report | None:
    """events.csv, and the report (picture and summary) of the rows recorded: a failed run's
    too, which keeps what it saw. None when nothing was recorded. In a failed run a problem
    writing them is said, not raised, so the run's own error is what the user sees."""
    if recorder is None:
        return None
    try:
        timeline, _ = recorder.write()
        if not recorder.rows:
            return None
        report = write_report(run_dir)
    except Exception as error:
        if not failed:
            raise
        say(f"{provider}: the report of the failed run could not be written ({one_line(error)})")
        return None
    ended = "the failed run's record" if failed else "✓"
    say(f"{provider}: {ended} {timeline}, {report.picture}, {report.markdown}")
    for line in report.summary.lines():
        say(f"  {line}")
    return report


def hpa_min_replicas(autoscaling: client.AutoscalingV2Api) -> int:
    hpa = read_server_hpa(autoscaling, APP_NAMESPACE, SERVER_NAME)
    return hpa.spec.min_replicas or 1


def wait_for_scale_in(
    target: StoryTarget,
    min_replicas: int,
    recorder: TimelineRecorder,
    loops: BackgroundLoops,
) -> bool:
    """True once replicas, ready and desired, are at `min_replicas` (one ready while the HPA
    wants more is a replica still starting) and nodes at their starting count; False when
    `target.scale_in_timeout` passes first (the run still ends with its report)."""

    def back_down() -> bool:
        loops.check()
        read = [row for row in recorder.rows if row["replicas_ready"] != ""]  # API answered
        if not read or read[-1] is not recorder.rows[-1]:
            return False
        first, last = read[0], read[-1]
        return (
            last["replicas_ready"] <= min_replicas
            and last["replicas_desired"] <= min_replicas
            and last["nodes_ready"] <= first["nodes_ready"]
            and target.settled()
        )

    try:
        wait_for(back_down, target.scale_in_timeout, "scale-in", period=2)
    except WaitTimeout:
        loops.check()  # a loop's own failure is not a slow scale-in
        return False
    return True
