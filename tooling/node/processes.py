"""The node's own processes, found by what their command lines name and stopped from any
process (`cluster create` starts them and `cluster delete`, another command, stops them)."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Sequence
from pathlib import Path

from tooling.rehearsal.components import alive

STOP_TIMEOUT_SECONDS = 20.0


def processes_naming(*marks: str) -> list[tuple[int, str]]:
    """Running processes other than this one whose command line contains one of MARKS, with
    that command line (words joined by spaces)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if any(mark in command for mark in marks) and alive(int(entry.name)):
            found.append((int(entry.name), command.strip()))
    return found


def stop_processes(pids: Sequence[int], timeout: float = STOP_TIMEOUT_SECONDS) -> None:
    """SIGTERM to each, then SIGKILL to those still there after TIMEOUT."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
