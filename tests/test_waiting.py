"""wait_until_ready with real short-lived processes: one that comes up, one that exits first
(the error quotes its log's last line and names the log), one that never does (a
WaitTimeout, also a UserError, saying so)."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from kubernetes.client.rest import ApiException

from tooling.errors import UserError
from tooling.waiting import WaitTimeout, wait_until_ready


@contextmanager
def python(code: str, log: Path) -> Iterator[subprocess.Popen]:
    """`python -c CODE`, its output in LOG; killed afterwards."""
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "-c", code], stdout=output, stderr=subprocess.STDOUT
        )
    try:
        yield process
    finally:
        process.kill()
        process.wait()


def wait_on(code: str, log: Path, ready=lambda: False, timeout: float = 30) -> None:
    """`python -c CODE` started and waited for until READY, as the project's processes are."""
    with python(code, log) as process:
        wait_until_ready(
            "the child",
            "its port to listen",
            ready,
            running=lambda: process.poll() is None,
            log=log,
            timeout=timeout,
            period=0.05,
        )
        assert process.poll() is None  # ready, and still running


def test_a_process_that_comes_up_is_waited_for(tmp_path):
    up = tmp_path / "up"
    code = (
        f"import pathlib, time; time.sleep(0.3); pathlib.Path({str(up)!r}).touch(); time.sleep(30)"
    )
    calls = []

    def ready() -> bool:
        calls.append(1)
        if len(calls) == 1:  # the API server restarting: not yet, not a failure
            raise ApiException(status=503)
        return up.exists()

    wait_on(code, tmp_path / "log", ready, timeout=10)
    assert len(calls) > 2


def test_a_process_that_exits_first_fails_at_once_quoting_its_log(tmp_path):
    log = tmp_path / "crasher.log"
    code = "import sys; print('starting', flush=True); sys.exit('no config in /etc/crasher')"
    with pytest.raises(UserError) as raised:
        wait_on(code, log, timeout=30)  # not waited out: its exit ends the wait
    message = str(raised.value)
    assert not isinstance(raised.value, WaitTimeout)
    assert message.startswith("the child exited while waiting for its port to listen: ")
    assert "starting no config in /etc/crasher" in message  # the last lines, on one line
    assert message.endswith(f"(its log: {log})")


def test_a_process_that_never_comes_up_times_out_naming_its_log(tmp_path):
    log = tmp_path / "slow.log"
    code = "import time; print('still loading the model', flush=True); time.sleep(30)"
    with pytest.raises(WaitTimeout) as raised:
        wait_on(code, log, timeout=1)
    assert str(raised.value) == (
        "the child: waited 1 s for its port to listen in vain: still loading the model "
        f"(its log: {log})"
    )


def test_an_empty_or_missing_log_is_said(tmp_path):
    log = tmp_path / "never-written.log"
    with pytest.raises(
        UserError,
        match=rf"exited while waiting for x \(nothing in its log: {re.escape(str(log))}\)$",
    ):
        wait_until_ready("it", "x", lambda: False, running=lambda: False, log=log, timeout=1)
    with pytest.raises(UserError, match=r"^it exited while waiting for x$"):
        wait_until_ready("it", "x", lambda: False, running=lambda: False, log=None, timeout=1)
