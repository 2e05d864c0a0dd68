"""The rehearsal cluster: kwokctl's binary runtime with the project's own builds of etcd,
kube-apiserver, kube-controller-manager (the real HPA controller), kube-scheduler,
kwok-controller and metrics-server; nodes and pods are simulated by kwok.

Every component binary is a local path from `make setup-rehearsal`, so kwokctl downloads
nothing. The node pool is a set of kwok Nodes shaped like GKE's e2-standard-4.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import yaml

from tooling import paths
from tooling.errors import UserError, one_line
from tooling.rehearsal import components
from tooling.rehearsal.profiles import Profile

COMPONENT_BINARIES = {
    "--etcd-binary": "etcd",
    "--kube-apiserver-binary": "kube-apiserver",
    "--kube-controller-manager-binary": "kube-controller-manager",
    "--kube-scheduler-binary": "kube-scheduler",
    "--kwok-controller-binary": "kwok",
    "--metrics-server-binary": "metrics-server",
}
NODE_GROUP_LABEL = "resnet-serving.dev/node-group"
# A Go duration ("200s") on a Node: kwok keeps the node NotReady that long after it appears (a
# new VM's boot and registration); nodes without it are Ready at once.
NODE_BOOT_ANNOTATION = "resnet-serving.dev/boot-duration"
# Processes the rehearsal runs beside kwokctl's (tooling.rehearsal.components), stopped on delete.
EXTRA_COMPONENTS = ("cluster-autoscaler", "prometheus", "keda-operator", "keda-adapter")
# e2-standard-4 as GKE reports it: 4 vCPU / 16 GB capacity, ~3.92 CPU / ~13 GiB allocatable.
E2_STANDARD_4 = {
    "capacity": {"cpu": "4", "memory": "16395412Ki", "pods": "110"},
    "allocatable": {"cpu": "3920m", "memory": "13862036Ki", "pods": "110"},
}


@dataclass(frozen=True)
class RehearsalCluster:
    name: str
    kubeconfig: Path


# The clusters this process owns (`owned`), each with the run directory its logs go to.
OWNED: dict[str, Path | None] = {}


def owner_lock(name: str) -> Path:
    """The file a run holds locked while it owns the cluster NAME: beside kwokctl's clusters
    rather than in the cluster's folder, which kwokctl creates and deletes."""
    return components.kwok_workdir() / "owners" / f"{name}.lock"


@contextlib.contextmanager
def owned(name: str, run_dir: Path | None = None) -> Iterator[None]:
    """This process owns the rehearsal cluster NAME until the block ends: another run under
    that name is refused at once, in one line, before it starts anything (two runs with one
    name share pid files, and one's teardown stops the other's processes). The hold is an
    exclusive flock, so it ends with its process: no stale lock outlives a killed run. With
    `run_dir`, the cluster's logs are copied there before the cluster is deleted, and an error
    naming a log names the copy."""
    if name in OWNED:  # already ours (a verb that creates, then deletes)
        yield
        return
    lock = owner_lock(name)
    with locked(lock, name) as handle:
        handle.truncate(0)
        handle.write(f"pid {os.getpid()}, run directory {run_dir or '-'}\n")
        handle.flush()
        OWNED[name] = run_dir
        try:
            yield
        except UserError as error:
            moved = pointing_at_kept_logs(error, name, run_dir)
            if moved is error:
                raise
            raise moved from error
        finally:
            del OWNED[name]


@contextlib.contextmanager
def locked(lock: Path, name: str) -> Iterator[TextIO]:
    """The lock file held (LOCK_EX | LOCK_NB), removed again when released; a UserError
    naming its holder if another process holds it."""
    lock.parent.mkdir(parents=True, exist_ok=True)
    while True:
        handle = open(lock, "a+")  # noqa: SIM115 (closed below)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = one_line(handle.read(), 200) or "another process"
            handle.close()
            raise UserError(
                f"the rehearsal cluster {name} is in use by another run ({holder}): wait for "
                f"it to end, or give this one a name of its own, e.g. --name {name}-2"
            ) from None
        with contextlib.suppress(FileNotFoundError):
            if os.stat(lock).st_ino == os.fstat(handle.fileno()).st_ino:
                break
        handle.close()  # its last owner removed it as we opened it: take the new one
    try:
        yield handle
    finally:
        lock.unlink(missing_ok=True)  # while still held, so no one locks the removed file
        handle.close()


def pointing_at_kept_logs(error: UserError, name: str, run_dir: Path | None) -> UserError:
    """The error with the cluster's log folder replaced by the run directory's copy of it
    (the error unchanged when no copy was made)."""
    logs = components.cluster_workdir(name) / "logs"
    if run_dir is None or not (run_dir / "logs").is_dir() or str(logs) not in str(error):
        return error
    return UserError(str(error).replace(str(logs), str(run_dir / "logs")))


def keep_logs(name: str) -> Path | None:
    """The cluster's logs (kwokctl's components' and the rehearsal's own) copied into the
    owning run's directory, RUN_DIR/logs, before they are deleted with the cluster."""
    run_dir, logs = OWNED.get(name), components.cluster_workdir(name) / "logs"
    if run_dir is None or not logs.is_dir():
        return None
    shutil.copytree(logs, run_dir / "logs", dirs_exist_ok=True)
    return run_dir / "logs"


def kwokctl(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Runs the pinned kwokctl with the pinned kubectl on PATH."""
    env = {**os.environ, "PATH": f"{paths.tools_bin()}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(
        [str(paths.tool("kwokctl")), *args], env=env, capture_output=True, text=True, check=check
    )


def running_clusters() -> list[str]:
    return kwokctl("get", "clusters").stdout.split()


def kwokctl_configuration(
    profile: Profile, component_args: dict[str, dict[str, str]] | None = None
) -> str:
    """kwokctl's configuration: offline (metrics-server's manifests and kubectl are local),
    the profile's controller timings and any extra flags per component (after kwokctl's own,
    so they win). (Component flags go here rather than in --extra-args, whose parsing in
    kwokctl v0.8.0 breaks for a second component.)"""
    manifests = paths.tools_bin().parent / "metrics-server-manifests"
    flags = {
        "kube-controller-manager": profile.controller_manager_args(),
        "metrics-server": profile.metrics_server_args(),
    }
    for component, args in (component_args or {}).items():
        flags[component] = {**flags.get(component, {}), **args}
    configuration = {
        "apiVersion": "config.kwok.x-k8s.io/v1alpha1",
        "kind": "KwokctlConfiguration",
        "options": {
            "metricsServerVersion": paths.pinned_versions()["METRICS_SERVER_VERSION"],
            "metricsServerManifests": [str(manifests)],
            "kubectlBinary": str(paths.tools_bin() / "kubectl"),
        },
        "componentsPatches": [
            {
                "name": component,
                "extraArgs": [{"key": key, "value": value} for key, value in args.items()],
            }
            for component, args in flags.items()
        ],
    }
    return yaml.safe_dump_all([configuration, *stages(profile)], sort_keys=False)


def stages(profile: Profile) -> list[dict]:
    """kwok's default node and pod Stages, with the profile's pod start delay on pod-ready
    (the time a real replica spends fetching, loading and warming up the model) and a node's
    boot time, from its NODE_BOOT_ANNOTATION, on node-initialize (none without it)."""
    folder = paths.tools_bin().parent / "kwok-stages"
    loaded = [yaml.safe_load(path.read_text()) for path in sorted(folder.glob("*.yaml"))]
    for stage in loaded:
        if stage["metadata"]["name"] == "pod-ready":
            stage["spec"]["delay"] = {"durationMilliseconds": int(profile.pod_start_seconds * 1000)}
        if stage["metadata"]["name"] == "node-initialize":
            stage["spec"]["delay"] = {
                "durationMilliseconds": 0,  # kwok falls back to it when the annotation is absent
                "durationFrom": {
                    "expressionFrom": f'.metadata.annotations["{NODE_BOOT_ANNOTATION}"]'
                },
            }
    return loaded


def missing_binaries() -> list[str]:
    """Binaries `make setup-rehearsal` has not installed yet."""
    names = [*COMPONENT_BINARIES.values(), "kwokctl", "kubectl"]
    return [name for name in names if not os.access(paths.tools_bin() / name, os.X_OK)]


@contextlib.contextmanager
def creation_lock() -> Iterator[None]:
    """One cluster starts at a time on this machine: kwokctl picks its ports by probing which
    are free, so two clusters starting together would pick the same ones."""
    lock_file = components.kwok_workdir() / "resnet-serving-create.lock"
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_file, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def create_cluster(
    name: str,
    kubeconfig: Path,
    profile: Profile,
    say: Callable[[str], None] = print,
    component_args: dict[str, dict[str, str]] | None = None,
) -> RehearsalCluster:
    """Starts the control plane (or reuses a running one of that name) and writes its
    kubeconfig to exactly `kubeconfig`; kwokctl keeps the cluster's own files in its folder
    (~/.kwok/clusters/NAME). `component_args`: extra flags per component (a real node's
    cluster: kube-apiserver's advertise address, kwok's controller kept off real nodes)."""
    missing = missing_binaries()
    if missing:
        raise UserError(
            f"rehearsal binaries missing ({', '.join(missing)}): run `make setup-rehearsal`"
        )
    kubeconfig.parent.mkdir(parents=True, exist_ok=True)
    if name in running_clusters():
        kubeconfig.write_text(kwokctl("get", "kubeconfig", f"--name={name}").stdout)
        say(f"rehearsal: reusing the running cluster {name} (its timers are as it was created)")
        return RehearsalCluster(name, kubeconfig)
    with tempfile.TemporaryDirectory() as scratch, creation_lock():
        kwok_config = Path(scratch) / "kwokctl.yaml"
        kwok_config.write_text(kwokctl_configuration(profile, component_args))
        args = [
            f"--config={kwok_config}",
            "create",
            "cluster",
            f"--name={name}",
            "--runtime=binary",
            "--enable=metrics-server",
            f"--kubeconfig={kubeconfig}",
            "--wait=5m",
            "--quiet-pull",
        ]
        for flag, binary in COMPONENT_BINARIES.items():
            args.append(f"{flag}={paths.tools_bin() / binary}")
        say(f"rehearsal: starting the control plane ({name}, profile {profile.name}) …")
        result = kwokctl(*args, check=False)
    if result.returncode != 0:
        kept = keep_logs(name)
        kwokctl("delete", "cluster", f"--name={name}", check=False)
        logs = f"; its logs: {kept}" if kept else ""
        raise UserError(
            f"kwokctl could not start the cluster {name}: {one_line(result.stderr)} "
            f"(a stale cluster of that name? `resnet-serving cluster delete --name NAME`){logs}"
        )
    return RehearsalCluster(name, kubeconfig)


def dead_components(name: str) -> list[str]:
    """kwokctl's components of the cluster whose process has exited."""
    pids = components.cluster_workdir(name) / "pids"
    ours = set(EXTRA_COMPONENTS)
    return sorted(
        pid_file.stem
        for pid_file in pids.glob("*.pid")
        if pid_file.stem not in ours and components.running_pid(name, pid_file.stem) is None
    )


@dataclass
class ControlPlaneSupervisor:
    """Starts again the control-plane processes that exit, as a kubelet restarts a crashed
    control-plane pod (kube-controller-manager and kube-scheduler exit when they lose their
    leader lease, e.g. while the API server does not answer)."""

    name: str
    say: Callable[[str], None] = print
    period: float = 2.0

    def run(self, stop: threading.Event) -> None:
        while not stop.wait(self.period):
            dead = dead_components(self.name)
            if dead:
                kwokctl("start", "cluster", f"--name={self.name}", check=False)
                self.say(f"rehearsal: {', '.join(dead)} exited; started again")


def delete_cluster(name: str) -> None:
    """Stops every component process and removes the cluster's files (no kwokctl: no cluster);
    a run that owns the cluster keeps its logs (`keep_logs`)."""
    for component in EXTRA_COMPONENTS:
        components.stop(name, component)
    keep_logs(name)
    if "kwokctl" not in missing_binaries():
        kwokctl("delete", "cluster", f"--name={name}", check=False)


def node_manifest(name: str, group: str) -> dict:
    """A kwok Node shaped like a GKE e2-standard-4 in the given node group."""
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {
                "kwok.x-k8s.io/node": "fake",
                "node.alpha.kubernetes.io/ttl": "0",
                # where metrics-server reads this node's (kwok-simulated) kubelet metrics
                "metrics.k8s.io/resource-metrics-path": f"/metrics/nodes/{name}/metrics/resource",
            },
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "node.kubernetes.io/instance-type": "e2-standard-4",
                "type": "kwok",
                NODE_GROUP_LABEL: group,
            },
        },
        "spec": {},
        "status": {**E2_STANDARD_4},
    }
