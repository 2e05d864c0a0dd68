"""The Locust chart's master and workers as real processes on this machine, against the replica
fleet: the rehearsal's use of the one launcher `load run` also uses
(tooling.loadgen.locust_command: the chart rendered with the run's values, and what points
inside a pod mapped here)."""

from __future__ import annotations

from pathlib import Path

from tooling.loadgen import locust_command
from tooling.loadgen.locust_command import LocustCommands, start
from tooling.loadgen.run import free_ports

__all__ = ["LocustCommands", "commands", "start"]


def commands(values: dict, host: str, results: Path) -> LocustCommands:
    """The master's and workers' command lines from the rendered chart, against `host` (the
    fleet's URL standing for the chart's Service), with their results in `results`."""
    master_port, web_port = free_ports(2)
    return locust_command.commands(
        values, locust_command.LocalRun(host, results, master_port, web_port)
    )
