"""How commands talk while they work: progress on stderr (stdout keeps each command's result),
with TensorFlow's start-up logging kept out of it."""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
from collections.abc import Callable, Iterator

Say = Callable[[str], None]
"""Where a long step reports its progress, one line at a time (`say`, or a test's list.append)."""

# absl's INFO and WARNING lines ("I0000 00:00:1796668326.789435  7757 port.cc:153] …") and the
# notice before them: what TF_CPP_MIN_LOG_LEVEL=2 means to hide, written at import time before
# TensorFlow reads it (oneDNN's notice).
EARLY_TF_LOG = re.compile(
    rb"[IW]\d{4} \d\d:\d\d:[\d.]+ +\d+ [\w.-]+:\d+\] "
    rb"|WARNING: All log messages before absl::InitializeLog\(\) is called"
)


def say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def import_tensorflow() -> None:
    """Imports TensorFlow, its C++ INFO and WARNING lines off stderr unless the user set
    TF_CPP_MIN_LOG_LEVEL. Call it once a command's inputs are checked, before its first
    TensorFlow import."""
    if "tensorflow" in sys.modules:
        return
    user_set = "TF_CPP_MIN_LOG_LEVEL" in os.environ
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with contextlib.nullcontext() if user_set else stderr_without(EARLY_TF_LOG):
        import tensorflow  # noqa: F401


@contextlib.contextmanager
def stderr_without(dropped: re.Pattern[bytes]) -> Iterator[None]:
    """While the block runs, what anything in the process writes to fd 2 passes on as it comes,
    except the lines `dropped` matches."""
    sys.stderr.flush()
    real = os.dup(2)
    read, write = os.pipe()
    os.dup2(write, 2)
    os.close(write)

    def forward() -> None:
        with open(read, "rb") as lines:
            for line in lines:
                if not dropped.match(line):
                    os.write(real, line)

    forwarder = threading.Thread(target=forward, name="stderr-filter", daemon=True)
    forwarder.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(real, 2)  # closes the pipe's last write end: the forwarder reads to its end
        forwarder.join(timeout=5)
        if not forwarder.is_alive():  # else a child kept the pipe open: it still writes there
            os.close(real)
