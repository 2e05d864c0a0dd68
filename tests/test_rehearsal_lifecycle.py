"""The rehearsal cluster's life, with the real processes: `cluster create --kubeconfig FILE`
writes exactly FILE; two clusters started at once both work (their own ports, their own
metrics); `cluster delete` and Ctrl-C at any stage of `cluster create` or `rehearse` leave no
process running and no port taken (checked by pid and by port)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import psutil
import pytest
from kubernetes import client

from tooling.kube import api_client
from tooling.rehearsal import components
from tooling.rehearsal.cluster import missing_binaries
from tooling.waiting import wait_for, wait_until_ready

MISSING = missing_binaries()
pytestmark = [
    pytest.mark.rehearsal,
    pytest.mark.skipif(
        bool(MISSING),
        reason=f"rehearsal binaries missing ({', '.join(MISSING)}): run `make setup-rehearsal`",
    ),
]
CLI = [sys.executable, "-m", "tooling.cli"]


def cluster_processes(name: str) -> dict[str, psutil.Process]:
    """The cluster's running component processes, by component, from their pid files."""
    found = {}
    for pid_file in (components.cluster_workdir(name) / "pids").glob("*.pid"):
        try:
            found[pid_file.stem] = psutil.Process(int(pid_file.read_text().strip()))
        except (psutil.NoSuchProcess, ValueError):
            continue
    return found


def listening_ports(processes: dict[str, psutil.Process]) -> set[int]:
    ports = set()
    for process in processes.values():
        try:
            connections = process.net_connections(kind="tcp")
        except psutil.NoSuchProcess:
            continue
        ports |= {c.laddr.port for c in connections if c.status == psutil.CONN_LISTEN}
    return ports


def assert_gone(processes: dict[str, psutil.Process], ports: set[int]) -> None:
    """Every process ended (by pid) and every port free again (by binding it)."""
    alive = [name for name, process in processes.items() if process.is_running()]
    alive = [name for name in alive if processes[name].status() != psutil.STATUS_ZOMBIE]
    assert not alive, f"still running: {alive}"
    for port in ports:
        with socket.socket() as probe:
            # SO_REUSEADDR: closed connections in TIME_WAIT do not count, a listener does
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(("0.0.0.0", port))  # raises if anything still listens on it


def pod_metrics_served(kubeconfig: Path, name: str) -> bool:
    """A pod with simulated CPU use in the cluster, and metrics-server serving its metrics."""
    api = api_client(kubeconfig)
    core = client.CoreV1Api(api)
    try:
        if not core.list_namespaced_service_account("default").items:
            return False  # a controller makes it; pods need it
        if not core.list_namespaced_pod("default", label_selector=f"probe={name}").items:
            core.create_namespaced_pod("default", probe_pod(name))
        listed = client.CustomObjectsApi(api).list_namespaced_custom_object(
            "metrics.k8s.io", "v1beta1", "default", "pods", label_selector=f"probe={name}"
        )
    except client.ApiException:  # not served yet
        return False
    finally:
        api.close()
    return bool(listed.get("items"))


def probe_pod(name: str) -> dict:
    return {
        "metadata": {
            "name": f"probe-{name}",
            "labels": {"probe": name},
            "annotations": {"kwok.x-k8s.io/usage-cpu": "250m"},
        },
        "spec": {
            "containers": [
                {"name": "probe", "image": "probe", "resources": {"requests": {"cpu": "100m"}}}
            ]
        },
    }


def test_two_clusters_at_once_each_write_their_kubeconfig_and_serve_metrics(tmp_path):
    names = [f"life-a-{os.getpid()}", f"life-b-{os.getpid()}"]
    kubeconfigs = [tmp_path / "first.kubeconfig", tmp_path / "second.kubeconfig"]
    results: dict[str, subprocess.CompletedProcess] = {}

    def create(name: str, kubeconfig: Path) -> None:
        command = [*CLI, "cluster", "create", "--name", name, "--kubeconfig", str(kubeconfig)]
        command += ["--node-autoscaler", "stand-in"]
        results[name] = subprocess.run(command, capture_output=True, text=True, timeout=400)

    threads = [
        threading.Thread(target=create, args=pair) for pair in zip(names, kubeconfigs, strict=True)
    ]
    processes: dict[str, psutil.Process] = {}
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for name, kubeconfig in zip(names, kubeconfigs, strict=True):
            assert results[name].returncode == 0, results[name].stderr[-1500:]
            assert results[name].stdout.strip() == str(kubeconfig.resolve())
        # exactly the files named, nothing else beside them
        assert sorted(tmp_path.iterdir()) == sorted(kubeconfigs)
        for name, kubeconfig in zip(names, kubeconfigs, strict=True):
            wait_for(lambda n=name, k=kubeconfig: pod_metrics_served(k, n), 120, "pod metrics", 0.5)
        processes = {f"{n}/{c}": p for n in names for c, p in cluster_processes(n).items()}
        ports = [listening_ports(cluster_processes(name)) for name in names]
        assert ports[0] and ports[1] and not ports[0] & ports[1]
    finally:
        for name in names:
            subprocess.run([*CLI, "cluster", "delete", "--name", name], capture_output=True)
    assert_gone(processes, set().union(*ports))


@pytest.fixture(autouse=True)
def sigint_as_at_a_terminal():
    """Ctrl-C reaches the commands these tests start as it does at a terminal. A runner started
    in the background (`make test &`, nohup) ignores SIGINT, its children inherit that, and
    Python then installs no KeyboardInterrupt: the interrupted command would run on."""
    before = signal.getsignal(signal.SIGINT)
    if before == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)  # children exec with SIG_DFL
    yield
    signal.signal(signal.SIGINT, before)


def interrupt_when(command: list[str], name: str, ready, output: Path, timeout: float = 300):
    """Starts `command` (its stderr into `output`), sends SIGINT once `ready(its stderr so
    far)` holds; returns what ran. When that fails, the command is killed and its cluster
    deleted, so that the next test does not find the name in use."""
    with output.open("w") as stderr:
        process = subprocess.Popen(command, stderr=stderr, stdout=subprocess.DEVNULL)
    seen: dict[str, psutil.Process] = {}
    ports: set[int] = set()

    def reached() -> bool:
        running = cluster_processes(name)
        seen.update(running)
        ports.update(listening_ports(running))
        return ready(output.read_text(errors="replace"))

    try:
        wait_until_ready(
            "the command",
            "the stage to interrupt it at",
            reached,
            running=lambda: process.poll() is None,
            log=output,
            timeout=timeout,
        )
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=120) == 130
    except BaseException:
        process.kill()
        process.wait()
        subprocess.run([*CLI, "cluster", "delete", "--name", name], capture_output=True)
        raise
    return seen, ports, output.read_text(errors="replace")


def test_ctrl_c_while_a_cluster_is_created_leaves_nothing(tmp_path):
    """Interrupted while kwokctl forks the control plane (etcd is up, the rest starting)."""
    name = f"life-c-{os.getpid()}"
    command = [*CLI, "cluster", "create", "--name", name]
    command += ["--kubeconfig", str(tmp_path / "kubeconfig")]
    seen, ports, output = interrupt_when(
        command, name, lambda _: "etcd" in cluster_processes(name), tmp_path / "stderr.txt"
    )
    assert seen, "no component process was seen"
    assert "interrupted" in output
    assert_gone(seen, ports)
    assert not components.cluster_workdir(name).exists()


def refused_beside(name: str, run_dir: Path) -> None:
    """A second `rehearse` under the name of one that runs is refused in one line, at once,
    and every process of the first still runs (its teardown used to stop them)."""
    first = cluster_processes(name)
    second = subprocess.run(
        [*CLI, "rehearse", "--name", name, "--report", str(run_dir)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert second.returncode == 2, second.stderr[-1500:]
    assert len(second.stderr.strip().splitlines()) == 1
    assert f"cluster {name} is in use by another run" in second.stderr
    assert not run_dir.exists()
    assert first and all(process.is_running() for process in first.values())


def test_ctrl_c_during_rehearse_leaves_nothing_and_keeps_the_report(tmp_path):
    """Interrupted while the load runs (a timeline row recorded); before that, once the model
    server is installed, a second run under the same name is refused."""
    name = f"life-r-{os.getpid()}"
    command = [*CLI, "rehearse", "--name", name, "--report", str(tmp_path / "run")]
    timeline = tmp_path / "run" / "timeline.csv"
    checked: list[bool] = []

    def ready(output: str) -> bool:
        if "model server installed" not in output:
            return False
        if not checked:
            refused_beside(name, tmp_path / "second")
            checked.append(True)
        return timeline.is_file() and len(timeline.read_text().splitlines()) > 1

    seen, ports, output = interrupt_when(command, name, ready, tmp_path / "stderr.txt")
    assert checked and {"kube-apiserver", "etcd"} <= set(seen) and "interrupted" in output
    assert (tmp_path / "run" / "summary.md").is_file(), output[-1500:]
    assert (tmp_path / "run" / "timeline.png").is_file()
    assert_gone(seen, ports)
    assert not components.cluster_workdir(name).exists()
