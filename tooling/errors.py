"""The one error type a user sees as one line (exit 2), and the translations into it of what
the user can fix (an unreachable cluster, a chart helm refused). Anything else is a bug and
keeps its traceback."""

from __future__ import annotations

from pathlib import Path


class UserError(Exception):
    """A problem the user can fix; printed as one line with what to do next."""


def one_line(text: str, limit: int = 400) -> str:
    """Text folded onto one line, its end kept when too long (the cause is usually last)."""
    folded = " ".join(str(text).split())
    return folded if len(folded) <= limit else "…" + folded[-limit:]


def cluster_unreachable(kubeconfig: Path, error: BaseException) -> UserError:
    return UserError(
        f"the cluster in {kubeconfig} does not answer ({one_line(error, 200)}): is it running? "
        "Start one with `resnet-serving cluster create`, or give --kubeconfig"
    )
