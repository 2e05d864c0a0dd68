"""Real Locust pods against real model-server pods on the node cluster:

- the headless Locust Job completes whatever its requests' failures (the server is stopped in
  the middle of the run), its CSV and HTML results can be read from the finished master
  (its /results volume, kept `resultsRetentionSeconds`), and the worker Job's pods end
  Succeeded, never restarted;
- scale-in under steady Locust load (2 replicas to 1) loses no request with the chart's
  defaults (preStop sleep, grace period, server.stopOnSigterm) for users whose requests each
  go through the Service (`KEEP_ALIVE=0`). (Users that keep their connection, Locust's
  default, are balanced per connection by kube-proxy: a kept one stays with the removed
  replica through its preStop sleep, and its next request fails when the server stops.)

Both charts are installed with their ci/node-values.yaml plus the overrides here. The host
reaches pod IPs, so the master's web API is read at its pod's address.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from pathlib import Path

from conftest import node_namespace
from kubernetes import client

from tooling import paths, releases
from tooling.loadgen.live_stats import LiveStats, parse_stats
from tooling.loadgen.run import read_aggregate
from tooling.names import LOAD_RELEASE, MASTER_SELECTOR, RELEASE, SELECTOR, SERVER_NAME
from tooling.providers.node import NODE_VALUES
from tooling.waiting import wait_for

WORKER_SELECTOR = MASTER_SELECTOR.replace("component=master", "component=worker")
RETENTION_SECONDS = 40  # the finished master keeps /results this long for the test to read


def server_values(replicas: int, **extra: object) -> tuple[dict, ...]:
    """The node's values for the model server, a fixed replica count (no HPA to fight a
    `kubectl scale`), and `extra` top-level values."""
    fixed = {"autoscaling": {"enabled": False}, "replicaCount": replicas, **extra}
    return (*releases.values_from_files(NODE_VALUES["resnet-serving"]), fixed)


def locust_values(
    users: int, run_time: str, workers: int, env: dict[str, str] | None = None
) -> tuple[dict, ...]:
    """The node's values for Locust: a fixed number of users (no shape), headless, the model
    server's Service as the target (the node values' host), `env` for the locustfile."""
    run = {
        "loadtest": {
            "env": env or {},
            "headless": True,
            "shape": "",
            "users": users,
            "spawnRate": users,
            "runTime": run_time,
            "resultsRetentionSeconds": RETENTION_SECONDS,
        },
        "worker": {"replicas": workers},
    }
    return (*releases.values_from_files(NODE_VALUES["locust"]), run)


def kubectl(kubeconfig: Path, *args: str) -> str:
    command = [str(paths.tool("kubectl")), f"--kubeconfig={kubeconfig}", *args]
    return subprocess.run(command, check=True, capture_output=True, text=True, timeout=60).stdout


def pods(core: client.CoreV1Api, namespace: str, selector: str) -> list[client.V1Pod]:
    return core.list_namespaced_pod(namespace, label_selector=selector).items


def master_selector(release: str) -> str:
    return MASTER_SELECTOR.replace(f"instance={LOAD_RELEASE},", f"instance={release},")


def master_pod(
    core: client.CoreV1Api, namespace: str, release: str = LOAD_RELEASE
) -> client.V1Pod | None:
    found = [pod for pod in pods(core, namespace, master_selector(release)) if pod.status.pod_ip]
    return found[0] if found else None


def master_report(
    core: client.CoreV1Api, namespace: str, release: str = LOAD_RELEASE
) -> dict | None:
    """The master's `/stats/requests` JSON, read at its pod's IP; None while it does not answer."""
    pod = master_pod(core, namespace, release)
    if pod is None:
        return None
    try:
        with urllib.request.urlopen(
            f"http://{pod.status.pod_ip}:8089/stats/requests", timeout=3
        ) as reply:
            return json.load(reply)
    except OSError:
        return None


def live(core: client.CoreV1Api, namespace: str, release: str = LOAD_RELEASE) -> LiveStats | None:
    report = master_report(core, namespace, release)
    return None if report is None else parse_stats(report)


def errors_of(report: dict | None) -> list[str]:
    return [f"{e['occurrences']} x {e['error']}" for e in (report or {}).get("errors", [])]


def job_condition(batch: client.BatchV1Api, namespace: str, selector: str) -> str | None:
    """`Complete` or `Failed` once the (one) Job the selector finds has ended, else None."""
    (job,) = batch.list_namespaced_job(namespace, label_selector=selector).items
    for condition in job.status.conditions or []:
        if condition.type in ("Complete", "Failed") and condition.status == "True":
            return condition.type
    return None


def wait_running_with_requests(
    core: client.CoreV1Api, namespace: str, timeout: float, release: str = LOAD_RELEASE
) -> None:
    def running() -> bool:
        stats = live(core, namespace, release)
        return stats is not None and stats.running and stats.requests >= 5

    wait_for(running, timeout, f"the Locust run {release} to be sending requests")


def scale(apps: client.AppsV1Api, namespace: str, replicas: int) -> None:
    apps.patch_namespaced_deployment_scale(SERVER_NAME, namespace, {"spec": {"replicas": replicas}})


def server_pods_left(core: client.CoreV1Api, namespace: str) -> int:
    return len(pods(core, namespace, SELECTOR))


def master_log(kubeconfig: Path, core: client.CoreV1Api, namespace: str) -> str:
    pod = master_pod(core, namespace)
    return "" if pod is None else kubectl(kubeconfig, "-n", namespace, "logs", pod.metadata.name)


def read_results(kubeconfig: Path, namespace: str, pod: str, into: Path) -> None:
    """The finished master's CSV and HTML, copied out of its /results volume."""
    for name in ("locust_stats.csv", "locust_stats_history.csv", "report.html"):
        exec_cat = ("exec", pod, "-c", "master", "--", "cat", f"/results/{name}")
        (into / name).write_text(kubectl(kubeconfig, "-n", namespace, *exec_cat))


def test_headless_job_completes_with_failed_requests_and_its_results_can_be_read(
    node_cluster, tmp_path
):
    """Locust's own `--exit-code-on-error` is 1: before the chart passed 0, the master ended
    1 and its Job (backoffLimit 0) Failed on one failed request. The server is scaled to 0
    (no preStop sleep) in the middle of the run, so the run has answered and failed requests."""
    started = time.monotonic()
    with node_namespace(node_cluster, "real-locust-job", LOAD_RELEASE, RELEASE) as (
        kubeconfig,
        api,
        namespace,
    ):
        core, apps, batch = client.CoreV1Api(api), client.AppsV1Api(api), client.BatchV1Api(api)
        server = server_values(1, preStopSleepSeconds=0)
        releases.install(kubeconfig, RELEASE, "resnet-serving", namespace, *server, wait=True)
        load = locust_values(users=2, run_time="40s", workers=2)
        releases.install(kubeconfig, LOAD_RELEASE, "locust", namespace, *load)
        wait_running_with_requests(core, namespace, 180)
        report = master_report(core, namespace)
        assert parse_stats(report).failures == 0, errors_of(report)
        scale(apps, namespace, 0)  # a stopped server: the rest of the run fails
        wait_for(
            lambda: "run finished" in master_log(kubeconfig, core, namespace),
            120,
            "the master to finish its run",
            period=3,
        )
        pod = master_pod(core, namespace).metadata.name
        log = master_log(kubeconfig, core, namespace)
        assert "run finished with exit code 0" in log, log[-3000:]
        read_results(kubeconfig, namespace, pod, tmp_path)
        row = read_aggregate(tmp_path / "locust_stats.csv")
        requests, failures = int(row["Request Count"]), int(row["Failure Count"])
        html = (tmp_path / "report.html").read_text()
        print(f"results: {requests} requests, {failures} failures; report.html {len(html)} chars")
        assert requests > failures > 0, row
        assert "Locust" in html
        assert "Aggregated" in log  # --only-summary: the summary is in the log too
        wait_for(
            lambda: job_condition(batch, namespace, MASTER_SELECTOR) is not None,
            RETENTION_SECONDS + 60,
            "the master's Job to end",
        )
        assert job_condition(batch, namespace, MASTER_SELECTOR) == "Complete"
        wait_for(
            lambda: job_condition(batch, namespace, WORKER_SELECTOR) is not None,
            60,
            "the worker Job to end",
        )
        assert job_condition(batch, namespace, WORKER_SELECTOR) == "Complete"
        (worker_job,) = batch.list_namespaced_job(namespace, label_selector=WORKER_SELECTOR).items
        workers = pods(core, namespace, WORKER_SELECTOR)
        phases = {pod.metadata.name: pod.status.phase for pod in workers}
        restarts = {
            pod.metadata.name: sum(s.restart_count for s in pod.status.container_statuses or [])
            for pod in workers
        }
        print(f"workers: {phases}, restarts {restarts}, failed pods {worker_job.status.failed}")
        assert len(workers) == 2 and set(phases.values()) == {"Succeeded"}, phases
        assert set(restarts.values()) == {0}, restarts
        assert not worker_job.status.failed  # no worker pod failed and was replaced
    print(f"wall: {time.monotonic() - started:.0f} s")


def test_scale_in_under_real_locust_loses_no_request_with_the_defaults(node_cluster):
    """Two replicas under a steady Locust run of 3 users (a new connection per request),
    scaled to one with the chart's defaults (preStop sleep 15 s, grace 45 s, stopOnSigterm):
    of the requests sent from just before the scale-in until 5 s after the removed pod is
    gone, none failed."""
    with node_namespace(node_cluster, "real-scale-in", LOAD_RELEASE, RELEASE) as (
        kubeconfig,
        api,
        namespace,
    ):
        core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
        releases.install(
            kubeconfig, RELEASE, "resnet-serving", namespace, *server_values(2), wait=True
        )
        load = locust_values(users=3, run_time="180s", workers=1, env={"KEEP_ALIVE": "0"})
        releases.install(kubeconfig, LOAD_RELEASE, "locust", namespace, *load)
        wait_running_with_requests(core, namespace, 180, LOAD_RELEASE)

        def requests_sent() -> int:
            stats = live(core, namespace, LOAD_RELEASE)
            return stats.requests if stats is not None else 0

        before = live(core, namespace, LOAD_RELEASE)
        assert before is not None
        scale(apps, namespace, 1)
        scaled = time.monotonic()
        wait_for(lambda: server_pods_left(core, namespace) == 1, 90, "the removed replica to go")
        gone = time.monotonic() - scaled
        removed_at = requests_sent()
        wait_for(
            lambda: requests_sent() >= removed_at + 5,
            60,
            "5 more requests, sent once the removed replica was gone",
        )
        report = master_report(core, namespace, LOAD_RELEASE)
    after, errors = parse_stats(report), errors_of(report)
    assert before.failures == 0, errors  # none before the scale-in
    requests, failures = after.requests - before.requests, after.failures - before.failures
    print(f"scale-in: removed pod gone after {gone:.0f} s; {failures} of {requests} failed")
    assert requests > 0
    assert failures == 0, errors
