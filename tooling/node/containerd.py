"""containerd as the node's runtime: its own config, root, state and socket, started and
stopped by the project, leaving nothing behind.

Its content and snapshots (the imported images) live under the per-user cache, so a second
start finds them; its state, socket and runc's state under /run/resnet-serving-node/NAME. Two
paths are fixed inside containerd itself, whatever the config says: the shims' sockets
(/run/containerd/s) and ctr's stdio fifos (/run/containerd/fifo); `stop` removes them when
empty and it made them. cgroups v1 with the cgroupfs driver: containers' cgroups sit under
/sys/fs/cgroup/CONTROLLER/NAMESPACE/, which `stop` removes when empty.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tooling import paths
from tooling.errors import UserError
from tooling.node.processes import processes_naming, stop_processes
from tooling.waiting import WaitTimeout, wait_until_ready

RUN_DIR = Path("/run/resnet-serving-node")
# Created by containerd itself, whatever the config says.
FIXED_DIRS = (Path("/run/containerd/s"), Path("/run/containerd/fifo"), Path("/run/containerd"))
CGROUP_ROOT = Path("/sys/fs/cgroup")
SANDBOX_IMAGE = "docker.io/resnet-serving/pause:3.10"
NAMESPACE = "k8s.io"  # the kubelet's (CRI's) namespace, where images must be imported
START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 20.0


def cache_dir() -> Path:
    """The per-user cache the node keeps its containerd content in (as hack/build-lib.sh)."""
    base = os.environ.get("RESNET_SERVING_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "resnet-serving"
    )
    return Path(base) / "node"


@dataclass(frozen=True)
class ContainerdPaths:
    """Where one node's containerd keeps things; its content (the imported images) under
    STORE's folder of the cache, the node's name unless given (nodes of one store run one at
    a time)."""

    name: str
    store: str = ""

    @property
    def root(self) -> Path:
        return cache_dir() / (self.store or self.name) / "containerd"

    @property
    def run(self) -> Path:
        return RUN_DIR / self.name

    @property
    def state(self) -> Path:
        return self.run / "containerd"

    @property
    def socket(self) -> Path:
        return self.run / "containerd.sock"

    @property
    def runc_root(self) -> Path:
        return self.run / "runc"

    @property
    def cni_conf_dir(self) -> Path:
        return self.run / "cni" / "net.d"

    @property
    def config(self) -> Path:
        return self.run / "containerd.toml"

    @property
    def log(self) -> Path:
        return self.run / "containerd.log"


def config_toml(where: ContainerdPaths, tools: Path, cni_bin: Path) -> str:
    """containerd's config (version 4): nothing of the host's (/etc/containerd, /opt, NRI),
    runc by path with the cgroupfs driver, the project's pause as the sandbox image, CNI from
    the project's plugins and its own conf dir. OOM score adjustments are kept at or above
    containerd's own: this machine's root lacks CAP_SYS_RESOURCE, so the sandbox's -998 (and a
    Guaranteed pod's -997) would fail runc's init with "oom_score_adj: Permission denied".
    Pods' network namespaces are mounted under its state, not /run/netns, so `stop` finds
    and unmounts the ones a killed sandbox leaves."""
    return f"""version = 4
root = '{where.root}'
state = '{where.state}'
imports = []
disabled_plugins = ['io.containerd.nri.v1.nri']

[plugins.'io.containerd.server.v1.grpc']
  address = '{where.socket}'
[plugins.'io.containerd.server.v1.ttrpc']
  address = '{where.socket}.ttrpc'
[plugins.'io.containerd.internal.v1.opt']
  path = '{where.root}/opt'
[plugins.'io.containerd.cri.v1.images']
  snapshotter = 'overlayfs'
[plugins.'io.containerd.cri.v1.images'.pinned_images]
  sandbox = '{SANDBOX_IMAGE}'
[plugins.'io.containerd.cri.v1.runtime']
  cdi_spec_dirs = []
  enable_cdi = false
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
  BinaryName = '{tools / "runc"}'
  Root = '{where.runc_root}'
  SystemdCgroup = false
[plugins.'io.containerd.cri.v1.runtime'.cni]
  bin_dirs = ['{cni_bin}']
  conf_dir = '{where.cni_conf_dir}'
[plugins.'io.containerd.grpc.v1.cri']
  stream_server_address = '127.0.0.1'
  stream_server_port = '0'
"""


def _tools() -> Path:
    tools = paths.tools_bin()
    for name in ("containerd", "containerd-shim-runc-v2", "ctr", "runc"):
        if not os.access(tools / name, os.X_OK):
            raise UserError(f"{name} is not installed in {tools}: run `make setup-node`")
    return tools


class Containerd:
    """One containerd process of the project's (`with Containerd("n1") as c: c.ctr(...)`)."""

    def __init__(self, name: str, netns: Path | None = None, store: str = "") -> None:
        self.where = ContainerdPaths(name, store)
        self.netns = netns  # containerd (and so CNI's plugins) runs in this network namespace
        self.tools = _tools()
        self.process: subprocess.Popen[bytes] | None = None
        self._made_fixed = [d for d in FIXED_DIRS if not d.exists()]
        self._cgroups_before = set(namespace_cgroups())

    def __enter__(self) -> Containerd:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def start(self) -> None:
        """Writes the config and starts containerd; returns once its socket answers."""
        if os.geteuid() != 0:
            raise UserError("containerd needs root: run the node as root")
        for folder in (self.where.root, self.where.state, self.where.cni_conf_dir):
            folder.mkdir(parents=True, exist_ok=True)
        cni_bin = self.tools.parent / "cni-bin"
        self.where.config.write_text(config_toml(self.where, self.tools, cni_bin))
        env = {**os.environ, "PATH": f"{self.tools}:{os.environ.get('PATH', '/usr/bin:/bin')}"}
        with self.where.log.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    *in_netns(self.netns),
                    str(self.tools / "containerd"),
                    "--config",
                    str(self.where.config),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        process = self.process
        try:
            wait_until_ready(
                "containerd",
                "its socket to answer",
                lambda: self.ctr("version", check=False, timeout=5).returncode == 0,
                running=lambda: process.poll() is None,
                log=self.where.log,
                timeout=START_TIMEOUT_SECONDS,
            )
        except WaitTimeout:
            self.stop()
            raise

    def ctr(
        self, *args: str, check: bool = True, timeout: float = 60, namespace: str = NAMESPACE
    ) -> subprocess.CompletedProcess[str]:
        """`ctr` against this containerd, in NAMESPACE."""
        command = [str(self.tools / "ctr"), "--address", str(self.where.socket)]
        command += ["--namespace", namespace, *args]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise UserError(f"ctr {' '.join(args)} failed: {result.stderr.strip()[-400:]}")
        return result

    def runc_flags(self) -> list[str]:
        """`ctr run`'s flags for the project's runc and its state dir."""
        return ["--runc-binary", str(self.tools / "runc"), "--runc-root", str(self.where.runc_root)]

    def import_image(self, archive: Path) -> None:
        """Imports an OCI archive (hack/images) for the kubelet to find (namespace k8s.io)."""
        self.ctr("images", "import", str(archive), timeout=600)

    def namespaces(self) -> list[str]:
        listing = self.ctr("namespaces", "list", "--quiet", check=False).stdout
        return [line for line in listing.split() if line]

    def _remove_containers(self) -> None:
        for namespace in self.namespaces():
            tasks = self.ctr("tasks", "list", "--quiet", namespace=namespace, check=False)
            for task in tasks.stdout.split():
                self.ctr(
                    "tasks", "kill", "--signal", "SIGKILL", task, namespace=namespace, check=False
                )
            for task in tasks.stdout.split():
                self.ctr("tasks", "delete", "--force", task, namespace=namespace, check=False)
            containers = self.ctr("containers", "list", "--quiet", namespace=namespace, check=False)
            for container in containers.stdout.split():
                self.ctr("containers", "delete", container, namespace=namespace, check=False)

    def stop(self) -> None:
        """Kills every container, stops containerd, unmounts and removes what it left; also
        from another process than the one that started it (containerd is found by its
        config's path)."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(subprocess.TimeoutExpired, UserError):
                self._remove_containers()
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        elif self.process is None and (pids := self.pids_of("containerd")):
            with contextlib.suppress(subprocess.TimeoutExpired, UserError):
                self._remove_containers()
            stop_processes(pids)
        self.process = None
        stop_processes([pid for pid, _ in processes_using(self.where)])  # orphaned shims
        for mount in reversed(self.mounts()):
            subprocess.run(["umount", "--lazy", mount], check=False, capture_output=True)
        for folder in self._made_fixed:
            with contextlib.suppress(OSError):
                folder.rmdir()
        for cgroup in self._made_cgroups():
            with contextlib.suppress(OSError):
                cgroup.rmdir()
        if not self.mounts():  # the run folder (config, socket, log) goes; the content stays
            shutil.rmtree(self.where.run, ignore_errors=True)

    def forget(self) -> None:
        """Removes the imported images and snapshots too (a stopped containerd's root)."""
        if not self.mounts():
            shutil.rmtree(self.where.root.parent, ignore_errors=True)

    def mounts(self) -> list[str]:
        """Mount points under this containerd's root or state."""
        prefixes = (str(self.where.root) + "/", str(self.where.run) + "/")
        with open("/proc/self/mountinfo") as mountinfo:
            points = [line.split()[4] for line in mountinfo]
        return [point for point in points if point.startswith(prefixes)]

    def leftovers(self) -> list[str]:
        """What a stopped containerd must not leave: its processes, mounts, shims' sockets."""
        found = [f"process {pid}: {command}" for pid, command in processes_using(self.where)]
        found += [f"mount {point}" for point in self.mounts()]
        found += [f"folder {folder}" for folder in self._made_fixed if folder.exists()]
        found += [f"cgroup {cgroup}" for cgroup in self._made_cgroups()]
        found += [f"folder {self.where.run}"] if self.where.run.exists() else []
        return found

    def pids_of(self, program: str) -> list[int]:
        """The processes of PROGRAM (a binary's name) that name this containerd's folders."""
        return [
            pid
            for pid, command in processes_using(self.where)
            if Path(command.split()[0]).name == program
            or any(Path(word).name == program for word in command.split()[:3])
        ]

    def _made_cgroups(self) -> list[Path]:
        return [cgroup for cgroup in namespace_cgroups() if cgroup not in self._cgroups_before]


def in_netns(netns: Path | None) -> list[str]:
    """The command prefix that runs a command in NETNS only (its mounts stay the host's, which
    the kubelet and containerd must share), or none."""
    return ["nsenter", f"--net={netns}"] if netns else []


def namespace_cgroups(namespaces: Sequence[str] = (NAMESPACE, "default")) -> list[Path]:
    """The cgroups v1 folders containerd makes per namespace (cgroupfs driver)."""
    found = []
    for controller in sorted(CGROUP_ROOT.iterdir()) if CGROUP_ROOT.is_dir() else []:
        found += [controller / n for n in namespaces if (controller / n).is_dir()]
    return found


def processes_using(where: ContainerdPaths) -> list[tuple[int, str]]:
    """Processes whose command line names this node's run folder or containerd's root (its
    containerd, shims, kubelet)."""
    return processes_naming(str(where.run), str(where.root))
