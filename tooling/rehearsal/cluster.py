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
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

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
EXTRA_COMPONENTS = ("cluster-autoscaler",)
# e2-standard-4 as GKE reports it: 4 vCPU / 16 GB capacity, ~3.92 CPU / ~13 GiB allocatable.
E2_STANDARD_4 = {
    "capacity": {"cpu": "4", "memory": "16395412Ki", "pods": "110"},
    "allocatable": {"cpu": "3920m", "memory": "13862036Ki", "pods": "110"},
}


@dataclass(frozen=True)
class RehearsalCluster:
    name: str
    kubeconfig: Path


def kwokctl(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Runs the pinned kwokctl with the pinned kubectl on PATH."""
    env = {**os.environ, "PATH": f"{paths.tools_bin()}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(
        [str(paths.tool("kwokctl")), *args], env=env, capture_output=True, text=True, check=check
    )


def running_clusters() -> list[str]:
    return kwokctl("get", "clusters").stdout.split()


def kwokctl_configuration(profile: Profile) -> str:
    """kwokctl's configuration: offline (metrics-server's manifests and kubectl are local) and
    the profile's controller timings. (Component flags go here rather than in --extra-args,
    whose parsing in kwokctl v0.8.0 breaks for a second component.)"""
    manifests = paths.tools_bin().parent / "metrics-server-manifests"
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
            for component, args in (
                ("kube-controller-manager", profile.controller_manager_args()),
                ("metrics-server", profile.metrics_server_args()),
            )
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
    name: str, kubeconfig: Path, profile: Profile, say: Callable[[str], None] = print
) -> RehearsalCluster:
    """Starts the control plane (or reuses a running one of that name) and writes its
    kubeconfig to exactly `kubeconfig`; kwokctl keeps the cluster's own files in its folder
    (~/.kwok/clusters/NAME)."""
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
        kwok_config.write_text(kwokctl_configuration(profile))
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
        kwokctl("delete", "cluster", f"--name={name}", check=False)
        raise UserError(
            f"kwokctl could not start the cluster {name}: {one_line(result.stderr)} "
            "(a stale cluster of that name? `resnet-serving cluster delete --name NAME`)"
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
    """Stops every component process and removes the cluster's files (no kwokctl: no cluster)."""
    for component in EXTRA_COMPONENTS:
        components.stop(name, component)
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
