"""The story's background loops: one that fails stops the run with its reason instead of
leaving it waiting for a load that will never end, and every wait has its timeout."""

from __future__ import annotations

import threading
import time

import pytest

from tooling.errors import UserError
from tooling.runs.story import BackgroundLoops


def test_a_crashed_loop_stops_the_wait_with_its_own_error():
    loops = BackgroundLoops()
    never_set = threading.Event()

    def recorder(stop: threading.Event) -> None:
        raise ConnectionResetError("the API server went away")

    loops.start(recorder)
    started = time.monotonic()
    with pytest.raises(ConnectionResetError, match="went away"):
        loops.wait(never_set, timeout=60, what="the load to end")
    assert time.monotonic() - started < 10  # not the 60 s timeout: at the loop's failure
    loops.join()


def test_a_wait_ends_at_its_timeout_in_one_line():
    loops = BackgroundLoops()
    loops.start(lambda stop: stop.wait())  # a healthy loop that runs until told to stop
    with pytest.raises(UserError, match="waited 2 s for the load to end in vain"):
        loops.wait(threading.Event(), timeout=2, what="the load to end")
    loops.join()
    assert not any(thread.is_alive() for thread in loops.threads)
