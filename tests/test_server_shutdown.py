"""How a terminating model server replica ends. TF Serving installs no SIGTERM handler, and a
PID 1 without a handler never receives SIGTERM from outside its PID namespace (the container
runtime's place), so the chart runs it under `files/run-server.sh`. Here the rendered
container's own command runs as PID 1 of a new PID namespace, with a stand-in
`tensorflow_model_server` (a process with no SIGTERM handler, as TF Serving's main.cc), and
SIGTERM comes from this, the parent namespace. The replica fleet of the rehearsal must kill a
deleted replica when the rendered pod would end."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import helm_cli as helm
import pytest
from conftest import RESNET_CHART, one_of
from kubernetes import client

from tooling.fleet.replicas import ModelCost, SimulatedReplica, pod_stop_seconds
from tooling.waiting import wait_until_ready

DEFAULT = RESNET_CHART / "ci" / "default-values.yaml"
CONFIG_DIR = "/etc/tfserving"
SERVER_BINARY = "/usr/bin/tensorflow_model_server"
UNSHARE = ["unshare", "--user", "--map-root-user", "--pid", "--fork"]


def namespaces_available() -> bool:
    try:
        return subprocess.run([*UNSHARE, "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


needs_pid_namespace = pytest.mark.skipif(
    not namespaces_available(), reason="cannot create a PID namespace here (unshare --pid)"
)


def rendered(*set_values: str) -> tuple[dict, dict, dict]:
    """The Deployment, its server container and the config map's files (default ci values)."""
    objects = tuple(helm.Helm.pinned().template(RESNET_CHART, [DEFAULT], list(set_values)))
    deployment = one_of(objects, "Deployment", "resnet-serving")
    (container,) = [
        c
        for c in deployment["spec"]["template"]["spec"]["containers"]
        if c["name"] == "tensorflow-serving"
    ]
    return deployment, container, one_of(objects, "ConfigMap", "-config")["data"]


def stand_in_server(bin_dir: Path, body: str) -> Path:
    """A `tensorflow_model_server` on PATH: records its arguments, then runs `body`."""
    bin_dir.mkdir(exist_ok=True)
    server = bin_dir / "tensorflow_model_server"
    server.write_text(f'#!/bin/sh\necho "$@" > "{bin_dir}/started"\n{body}\n')
    server.chmod(0o755)
    return server


def start_as_pid_1(container: dict, files: dict, here: Path, server: Path) -> subprocess.Popen:
    """The container's command and args as PID 1 of a new PID namespace, the pod's config
    directory and the image's server binary mapped to this machine."""
    (here / "etc").mkdir()
    for name, text in files.items():
        (here / "etc" / name).write_text(text)
    command = []
    for part in [*container["command"], *container["args"]]:
        if part == SERVER_BINARY:
            part = str(server)
        elif part.startswith(CONFIG_DIR + "/"):
            part = str(here / "etc") + part.removeprefix(CONFIG_DIR)
        command.append(part)
    env = {**os.environ, "PATH": f"{server.parent}:{os.environ['PATH']}"}
    process = subprocess.Popen(
        [*UNSHARE, *command], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    wait_until_ready(
        "the pod's command",
        "the server to start",
        (server.parent / "started").exists,
        running=lambda: process.poll() is None,
        log=None,  # its output is the test's to read
        timeout=10,
        period=0.05,
    )
    return process


def pid_1_of(process: subprocess.Popen) -> int:
    """The namespace's init, as seen from here: unshare's one child."""
    children = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
    (child,) = children
    return int(child)


def terminate(process: subprocess.Popen, within: float) -> float | None:
    """SIGTERM to the namespace's PID 1, as the kubelet sends it after the preStop hook; the
    seconds it took to exit, None if it was still running `within` seconds later (then it is
    SIGKILLed, as at the grace period's end)."""
    init = pid_1_of(process)
    started = time.monotonic()
    os.kill(init, signal.SIGTERM)
    try:
        process.wait(timeout=within)
        return time.monotonic() - started
    except subprocess.TimeoutExpired:
        os.kill(init, signal.SIGKILL)
        process.wait(timeout=10)
        return None


@needs_pid_namespace
def test_sigterm_after_the_prestop_drain_stops_the_server(tmp_path):
    _, container, files = rendered()
    server = stand_in_server(tmp_path / "bin", "exec sleep 300")
    process = start_as_pid_1(container, files, tmp_path, server)
    took = terminate(process, within=5)
    output = process.stdout.read()
    assert took is not None, f"SIGTERM did not stop the server: {output}"
    print(f"exited {took:.2f} s after SIGTERM")
    assert process.returncode == 0, output
    assert "SIGTERM" in output and "tensorflow_model_server stopped" in output
    # the server got the chart's flags unchanged
    assert (tmp_path / "bin" / "started").read_text().split() == [
        str(tmp_path / "etc") + a.removeprefix(CONFIG_DIR) if a.startswith(CONFIG_DIR) else a
        for a in container["args"]
    ]


@needs_pid_namespace
def test_without_the_wrapper_the_server_as_pid_1_ignores_sigterm(tmp_path):
    """What the upstream image does (and the chart did): only the kill at the deadline ends it."""
    _, container, files = rendered("server.stopOnSigterm=false")
    assert container["command"] == [SERVER_BINARY]
    assert "run-server.sh" not in files
    server = stand_in_server(tmp_path / "bin", "exec sleep 300")
    process = start_as_pid_1(container, files, tmp_path, server)
    assert terminate(process, within=2) is None


@needs_pid_namespace
def test_a_server_that_exits_by_itself_passes_its_status_on(tmp_path):
    """A crashed server ends the container with its status, so the kubelet restarts it."""
    _, container, files = rendered()
    server = stand_in_server(tmp_path / "bin", "exit 3")
    process = start_as_pid_1(container, files, tmp_path, server)
    assert process.wait(timeout=10) == 3
    assert "tensorflow_model_server exited with status 3" in process.stdout.read()


def as_pod(deployment: dict) -> client.V1Pod:
    """The Deployment's pod template as the pod the API server would return."""
    template = deployment["spec"]["template"]
    pod = {"apiVersion": "v1", "kind": "Pod", **template}
    return client.ApiClient().deserialize(json.dumps(pod), "V1Pod", None)


@pytest.mark.parametrize(
    ("set_values", "stop", "lives"),
    [
        ((), 15.0, 15.0),
        (("preStopSleepSeconds=5",), 5.0, 5.0),
        (("preStopSleepSeconds=0",), 0.0, 0.0),
        (("server.stopOnSigterm=false",), None, 45.0),
    ],
    ids=["default", "prestop-5", "no-prestop", "no-wrapper"],
)
def test_the_fleet_kills_a_deleted_replica_when_the_rendered_pod_would_end(set_values, stop, lives):
    """Seconds from the deletion (45 left to the deadline) to the replica's death."""
    deployment, _, _ = rendered(*set_values)
    pod = as_pod(deployment)
    assert pod_stop_seconds(pod) == stop
    replica = SimulatedReplica("pod", 1.0, ModelCost(0.1, 1.0), 45.0, pod_stop_seconds(pod))
    assert replica.seconds_left(45.0) == lives
    assert replica.seconds_left(40.0) == max(0.0, lives - 5.0)  # 5 s after the deletion
