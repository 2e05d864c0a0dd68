"""A headless Locust run's life, with what charts/locust renders: real Locust processes with the
chart's own command lines, the master's shell as PID 1 of its own PID namespace (as in a
container), and helm against a real kube-apiserver.

- every request failing ends the master 0 and the workers 0 (the results hold the failures);
- a TERM to the master (its pod deleted) ends the run in seconds with its CSV and HTML report;
- `helm upgrade` of a headless release whose pods changed makes a new run, one that changes
  nothing leaves the Jobs alone.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import namespace_in
from kubernetes import client

from tooling import releases
from tooling.loadgen import LOADGEN_DIR, LOCUSTFILE, locust_command
from tooling.loadgen.live_stats import read_from_url
from tooling.loadgen.run import free_port, read_aggregate
from tooling.names import MASTER_SELECTOR
from tooling.rehearsal import locust_processes
from tooling.waiting import wait_for, wait_until_ready

pytestmark = pytest.mark.slow  # real Locust processes, a cluster


def values(run_time: str, workers: int = 2) -> dict:
    """A headless run of two users without a shape (the chart's defaults otherwise)."""
    return {
        "loadtest": {
            "host": "http://resnet-serving:8501",
            "headless": True,
            "shape": "",
            "users": 2,
            "spawnRate": 2,
            "runTime": run_time,
            "resultsRetentionSeconds": 600,
        },
        "worker": {"replicas": workers},
    }


def nothing_listens() -> str:
    return f"http://127.0.0.1:{free_port()}"


def test_a_run_whose_requests_all_fail_ends_0_with_the_failures_in_its_results(tmp_path):
    """Before: Locust's `--exit-code-on-error` (1) ended the master 1, and its Job (backoffLimit
    0) Failed, for one failed request. The workers end 0 on the master's quit message, which is
    what lets their Job complete."""
    commands = locust_processes.commands(values("6s"), nothing_listens(), tmp_path)
    master, *workers = locust_processes.start(commands, tmp_path)
    try:
        master.wait(timeout=90)
        ended = [worker.wait(timeout=20) for worker in workers]
    finally:
        stop([master, *workers])
    row = read_aggregate(tmp_path / "locust_stats.csv")
    print(f"requests {row['Request Count']}, failures {row['Failure Count']}, workers {ended}")
    assert int(row["Request Count"]) > 0
    assert row["Failure Count"] == row["Request Count"]
    assert master.returncode == 0, (tmp_path / "locust.log").read_text()[-2000:]
    assert ended == [0, 0]


def unshare_works() -> bool:
    unshare = shutil.which("unshare")
    if not unshare:
        return False
    return subprocess.run([unshare, "--pid", "--fork", "true"], check=False).returncode == 0


def localized_master(commands: locust_command.LocustCommands, results: Path) -> list[str]:
    """The master container's own command and arguments (the shell wrapper and all), with its
    paths and ports mapped to this machine as the rehearsal maps them."""
    objects = locust_command.render(values("120s", workers=1))
    _, container = locust_command.container(objects, "Job", "master")
    flags = dict(word.split("=", 1) for word in commands.master if "=" in word)
    replacements = {
        "/mnt/locust/code/locustfile.py": str(LOCUSTFILE),
        "/results": str(results),
        "127.0.0.1:8089": f"127.0.0.1:{commands.web_port}",
        "--web-port=8089": f"--web-port={commands.web_port}",
        "--master-bind-port=5557": f"--master-bind-port={flags['--master-bind-port']}",
    }
    words = []
    for word in [*container["command"], *container["args"]]:
        for inside, here in replacements.items():
            word = word.replace(inside, here)
        words.append(word)
    return words


def children_of(process: subprocess.Popen) -> list[int]:
    children = Path(f"/proc/{process.pid}/task/{process.pid}/children")
    try:
        return [int(pid) for pid in children.read_text().split()]
    except OSError:  # it has exited
        return []


def child_of(process: subprocess.Popen, log: Path) -> int:
    """The pid (as this machine sees it) of the process `unshare --fork` started: PID 1 inside."""
    wait_until_ready(
        "unshare",
        "its child",
        lambda: children_of(process) != [],
        running=lambda: process.poll() is None,
        log=log,
        timeout=10,
        period=1,
    )
    return children_of(process)[0]


@pytest.mark.skipif(not unshare_works(), reason="needs `unshare --pid` (root or user namespaces)")
def test_a_deleted_master_ends_its_run_at_once_with_its_results(tmp_path):
    """Before: the master's `sh` was PID 1, which has no default signal actions, so TERM was
    ignored: the pod waited out its grace period, was killed, and Locust wrote nothing more.
    TERM is sent from outside the PID namespace, as the container runtime sends it."""
    results = tmp_path / "results"
    commands = locust_processes.commands(values("120s", workers=1), nothing_listens(), results)
    environment = {
        **os.environ,
        **commands.environment,
        "PYTHONPATH": str(LOADGEN_DIR),
        "PATH": f"{Path(commands.master[0]).parent}:{os.environ['PATH']}",  # locust, python
    }
    log = (tmp_path / "master.log").open("wb")
    master = subprocess.Popen(
        ["unshare", "--pid", "--fork", "--kill-child", *localized_master(commands, results)],
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    worker = subprocess.Popen(commands.worker, env=environment, stdout=log, stderr=log)
    try:
        pid_1 = child_of(master, tmp_path / "master.log")
        web = f"http://127.0.0.1:{commands.web_port}"
        wait_until_ready(
            "the Locust master",
            "the run to send requests",
            lambda: running_with_requests(web),
            running=lambda: master.poll() is None,
            log=tmp_path / "master.log",
            timeout=60,
            period=1,
        )
        os.kill(pid_1, signal.SIGTERM)
        terminated = time.monotonic()
        try:
            code = master.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pytest.fail("the master ignored TERM for 15 s (its grace period is 30 s)")
        seconds = time.monotonic() - terminated
        worker_code = worker.wait(timeout=20)
    finally:
        stop([master, worker])
        log.close()
    print(f"TERM to exit: {seconds:.1f} s; master {code}, worker {worker_code}")
    output = (tmp_path / "master.log").read_text()
    assert code == 0 and worker_code == 0, output[-2000:]
    assert seconds < 10
    assert int(read_aggregate(results / "locust_stats.csv")["Request Count"]) > 0
    assert "Locust" in (results / "report.html").read_text()
    assert "run stopped by TERM" in output and "Got SIGTERM signal" in output


def running_with_requests(web: str) -> bool:
    try:
        stats = read_from_url(web, timeout=2)
    except OSError:
        return False
    return stats.running and stats.failures > 0


def stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def master_and_worker_jobs(batch: client.BatchV1Api, namespace: str) -> dict[str, object]:
    jobs = batch.list_namespaced_job(namespace, label_selector="app.kubernetes.io/instance=load")
    return {
        job.metadata.labels["app.kubernetes.io/component"]: job
        for job in jobs.items
        if not job.metadata.deletion_timestamp
    }


def test_helm_upgrade_of_a_headless_run_makes_a_new_run_when_its_pods_change(shared_cluster):
    """Before: the master's Job kept its name, and the API server refused its changed pod
    template (`field is immutable`), so the upgrade failed."""
    kubeconfig, api = shared_cluster
    batch, core = client.BatchV1Api(api), client.CoreV1Api(api)
    with namespace_in(api, "locust-upgrade") as namespace:
        releases.install(kubeconfig, "load", "locust", namespace, values("60s"))
        first = master_and_worker_jobs(batch, namespace)
        wait_for(  # Pod Security restricted admits the Jobs' pods
            lambda: bool(
                core.list_namespaced_pod(
                    namespace, label_selector=f"job-name={first['master'].metadata.name}"
                ).items
            ),
            60,
            "the master Job's pod",
        )
        releases.install(kubeconfig, "load", "locust", namespace, values("60s"))
        same = master_and_worker_jobs(batch, namespace)
        assert {c: j.metadata.uid for c, j in same.items()} == {
            c: j.metadata.uid for c, j in first.items()
        }, "an upgrade that changes no pod must leave the run alone"
        releases.install(kubeconfig, "load", "locust", namespace, values("90s"))  # a new run
        wait_for(
            lambda: (
                not {j.metadata.name for j in first.values()}
                & {j.metadata.name for j in batch.list_namespaced_job(namespace).items}
            ),
            60,
            "helm to delete the first run's Jobs",
        )
        second = master_and_worker_jobs(batch, namespace)
        assert set(first) == set(second) == {"master", "worker"}
        assert "--run-time=90s" in second["master"].spec.template.spec.containers[0].args
        (found,) = batch.list_namespaced_job(namespace, label_selector=MASTER_SELECTOR).items
        assert found.metadata.name == second["master"].metadata.name  # as the tooling finds it
        releases.uninstall(kubeconfig, "load", namespace, wait=True)
