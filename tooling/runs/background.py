"""A run's background loops (the load, the recorder, a target's own work), each in a thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from tooling.errors import UserError


class BackgroundLoops:
    """The run's background loops, each in a thread. One that fails stops the run (`check`):
    with its reason, when it is one the user can act on (a UserError), else with its
    traceback (a bug)."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []
        self.failure: BaseException | None = None

    def start(self, loop: Callable[[threading.Event], None]) -> None:
        def guarded() -> None:
            try:
                loop(self.stop)
            except BaseException as error:  # re-raised in the run's thread by check()
                self.failure = error
                self.stop.set()

        thread = threading.Thread(target=guarded, daemon=True)
        thread.start()
        self.threads.append(thread)

    def check(self) -> None:
        if self.failure is not None:
            raise self.failure

    def wait(self, event: threading.Event, timeout: float, what: str) -> None:
        """Until `event` is set; raises if a loop fails first or `timeout` passes."""
        deadline = time.monotonic() + timeout
        while not event.wait(1.0):
            self.check()
            if time.monotonic() > deadline:
                raise UserError(f"waited {timeout:.0f} s for {what} in vain")

    def join(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)
