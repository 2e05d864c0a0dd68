"""Waiting, the one way the project does it: until a condition holds (`wait_for`), or until a
process it started is ready (`wait_until_ready`), which also fails as soon as the process
exits, naming its log and quoting its last lines."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path

from tooling.errors import UserError, one_line
from tooling.runs.transient import TRANSIENT_ERRORS

TAIL_LINES = 5  # of a process's log, quoted when it did not come up


class WaitTimeout(UserError):
    """A wait that ran out of time (one line for the user, like any UserError)."""


def wait_for(
    condition: Callable[[], bool],
    timeout: float,
    what: str,
    period: float = 1.0,
    hint: str = "",
) -> None:
    """Until `condition` holds (an API error counts as not yet); WaitTimeout (a UserError)
    after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if condition():
                return
        except TRANSIENT_ERRORS:
            pass
        if time.monotonic() > deadline:
            advice = f"; {hint}" if hint else ""
            raise WaitTimeout(f"waited {timeout:.0f} s for {what} in vain{advice}")
        time.sleep(period)


def log_tail(log: Path, lines: int = TAIL_LINES) -> str:
    """The last `lines` lines of `log` ("" when it is missing or empty)."""
    if not log.is_file():
        return ""
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def wait_until_ready(
    name: str,
    what: str,
    ready: Callable[[], bool],
    *,
    running: Callable[[], bool],
    log: Path | None,
    timeout: float,
    period: float = 0.2,
) -> None:
    """Until `ready()` holds (a transient API error counts as not yet) for the process `name`,
    e.g. `wait_until_ready("containerd", "its socket to answer", answers, running=lambda:
    process.poll() is None, log=log, timeout=30)`. A UserError as soon as `running()` is
    false, a WaitTimeout after `timeout` s; either says what was waited for, quotes the last
    lines of `log` and names it. Stopping what did not come up is the caller's."""

    def up() -> bool:
        with contextlib.suppress(*TRANSIENT_ERRORS):
            if ready():
                return True
        if not running():
            raise UserError(f"{name} exited while waiting for {what}{said(log)}")
        return False

    try:
        wait_for(up, timeout, what, period)
    except WaitTimeout:
        message = f"{name}: waited {timeout:.0f} s for {what} in vain{said(log)}"
        raise WaitTimeout(message) from None


def said(log: Path | None) -> str:
    """What a process's log says at its end, and where it is, to end an error with."""
    if log is None:
        return ""
    tail = one_line(log_tail(log))
    return f": {tail} (its log: {log})" if tail else f" (nothing in its log: {log})"
