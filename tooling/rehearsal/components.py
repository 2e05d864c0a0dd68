"""Control-plane processes the rehearsal starts itself, beside the ones kwokctl runs.

Each has its pid file and log where kwokctl keeps its own (`$KWOK_WORKDIR/clusters/NAME/pids`
and `/logs`, KWOK_WORKDIR defaulting to ~/.kwok), runs in its own session (Ctrl-C in the
terminal reaches the rehearsal, which stops it), and is stopped by name when the cluster is
deleted, from any process.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

from tooling import waiting

STOP_SECONDS = 10


def kwok_workdir() -> Path:
    """kwokctl's own folder (KWOK_WORKDIR, else ~/.kwok)."""
    return Path(os.environ.get("KWOK_WORKDIR", Path.home() / ".kwok"))


def cluster_workdir(cluster_name: str) -> Path:
    """kwokctl's folder for the cluster."""
    return kwok_workdir() / "clusters" / cluster_name


def pid_file(cluster_name: str, component: str) -> Path:
    return cluster_workdir(cluster_name) / "pids" / f"{component}.pid"


def log_file(cluster_name: str, component: str) -> Path:
    return cluster_workdir(cluster_name) / "logs" / f"{component}.log"


def alive(pid: int) -> bool:
    """Is the process there (a child of ours that exited is reaped, not counted, nor is a
    zombie)?"""
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie nobody has reaped yet has exited
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def running_pid(cluster_name: str, component: str) -> int | None:
    try:
        pid = int(pid_file(cluster_name, component).read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if alive(pid) else None


def start(
    cluster_name: str, component: str, argv: list[str], environment: dict[str, str]
) -> subprocess.Popen | None:
    """Starts the component (None: it already runs for this cluster)."""
    if running_pid(cluster_name, component) is not None:
        return None
    pids, log = pid_file(cluster_name, component), log_file(cluster_name, component)
    pids.parent.mkdir(parents=True, exist_ok=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as handle:
        process = subprocess.Popen(
            argv, stdout=handle, stderr=subprocess.STDOUT, env=environment, start_new_session=True
        )
    pids.write_text(f"{process.pid}\n")
    return process


def stop(cluster_name: str, component: str) -> None:
    """SIGTERM, then SIGKILL after STOP_SECONDS; nothing if it is not running."""
    pid = running_pid(cluster_name, component)
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + STOP_SECONDS
            while alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
    pid_file(cluster_name, component).unlink(missing_ok=True)


def log_tail(cluster_name: str, component: str, lines: int = 15) -> str:
    return waiting.log_tail(log_file(cluster_name, component), lines)
