"""Runs `resnet-serving rehearse` once per configuration, one after another or a few side by
side, each its own process with its own cluster, run directory and log."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tooling.tuning.configurations import Configuration


@dataclass(frozen=True)
class Outcome:
    configuration: Configuration
    run_dir: Path
    log: Path
    exit_code: int
    seconds: float

    @property
    def recorded(self) -> bool:
        """Did the run get as far as a timeline (a run that did not scale back in did)?"""
        return (self.run_dir / "timeline.csv").is_file()


def rehearse_command(
    configuration: Configuration, run_dir: Path, cluster_name: str, rehearse_args: list[str]
) -> list[str]:
    values = [
        argument for path in configuration.values_files for argument in ("--values", str(path))
    ]
    return [
        sys.executable,
        "-m",
        "tooling.cli",
        "rehearse",
        "--name",
        cluster_name,
        "--report",
        str(run_dir),
        *values,
        *rehearse_args,
    ]


def run_all(
    configurations: list[Configuration],
    out_dir: Path,
    rehearse_args: list[str],
    parallel: int = 1,
    say: Callable[[str], None] = print,
) -> list[Outcome]:
    """Each configuration's rehearsal into out_dir/NAME (log out_dir/NAME.log), at most
    `parallel` at a time; the outcomes in the configurations' order."""
    total = len(configurations)

    def run_one(index: int) -> Outcome:
        configuration = configurations[index]
        run_dir, log = out_dir / configuration.name, out_dir / f"{configuration.name}.log"
        command = rehearse_command(
            configuration, run_dir, f"tune-{os.getpid()}-{index + 1}", rehearse_args
        )
        say(f"tune: [{index + 1}/{total}] {configuration.name} running … (log {log})")
        started = time.monotonic()
        with open(log, "w") as handle:
            process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT)
            try:
                exit_code = process.wait()
            except BaseException:  # Ctrl-C: the rehearsal cleans up its cluster on SIGINT
                process.send_signal(signal.SIGINT)
                process.wait()
                raise
        outcome = Outcome(configuration, run_dir, log, exit_code, time.monotonic() - started)
        mark = "✓" if exit_code == 0 else ("✗ (recorded)" if outcome.recorded else "✗")
        say(
            f"tune: [{index + 1}/{total}] {mark} {configuration.name} in "
            f"{outcome.seconds:.0f} s (exit {exit_code})"
        )
        return outcome

    out_dir.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max(1, parallel)) as pool:
        return list(pool.map(run_one, range(total)))
