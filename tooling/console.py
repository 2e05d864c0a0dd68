"""How commands talk while they work: progress on stderr (stdout keeps each command's result)."""

from __future__ import annotations

import sys


def say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
