"""The process that keeps a node cluster running after `cluster create --provider node` returns:
`python -m tooling.node.daemon --name N --kubeconfig F --profile P` starts the NodeCluster,
says `READY` in its log, supervises the control plane, and on SIGTERM or SIGINT stops all of
it and exits 0 (1 if something was left behind, named in the log).

Its files are under $KWOK_WORKDIR/nodes/NAME: `daemon.pid` and `daemon.log`.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from tooling.errors import UserError
from tooling.node.node_cluster import NodeCluster, NodeClusterSpec
from tooling.rehearsal import components
from tooling.rehearsal.cluster import ControlPlaneSupervisor
from tooling.rehearsal.profiles import profile

READY = "READY"
FAILED = "FAILED"


def daemon_dir(name: str) -> Path:
    return components.kwok_workdir() / "nodes" / name


def pid_file(name: str) -> Path:
    return daemon_dir(name) / "daemon.pid"


def log_file(name: str) -> Path:
    return daemon_dir(name) / "daemon.log"


def running_pid(name: str) -> int | None:
    """The daemon's pid if it runs."""
    try:
        pid = int(pid_file(name).read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if components.alive(pid) else None


def say(line: str) -> None:
    print(line, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tooling.node.daemon")
    parser.add_argument("--name", required=True)
    parser.add_argument("--kubeconfig", type=Path, required=True)
    parser.add_argument("--profile", default="fast")
    args = parser.parse_args(argv)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    pid_file(args.name).parent.mkdir(parents=True, exist_ok=True)
    pid_file(args.name).write_text(f"{os.getpid()}\n")
    spec = NodeClusterSpec(args.kubeconfig, args.name, profile(args.profile))
    cluster = NodeCluster(spec, say)
    try:
        cluster.start()
    except UserError as error:
        say(f"{FAILED} {error}")
        return 2
    except BaseException as error:  # a bug: its traceback goes to the log
        say(f"{FAILED} {type(error).__name__}: {error}")
        raise
    supervisor = ControlPlaneSupervisor(args.name, say)
    supervising = threading.Thread(target=supervisor.run, args=(stop,), daemon=True)
    supervising.start()
    say(READY)
    stop.wait()
    supervising.join(timeout=30)
    say(f"node: stopping {args.name} …")
    cluster.stop()
    left = cluster.leftovers()
    for item in left:
        say(f"node: left behind: {item}")
    say(f"node: ✓ {args.name} deleted" if not left else f"node: {len(left)} things left behind")
    pid_file(args.name).unlink(missing_ok=True)
    return 1 if left else 0


if __name__ == "__main__":
    sys.exit(main())
