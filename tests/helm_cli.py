"""Thin, synchronous calls of a helm binary for rendering and linting charts.

Releases on clusters go through pyhelm3 (see `releases`); rendering and linting here shell out
to an exact helm binary so the same chart can be checked with helm v4 and helm v3.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from tooling import paths

HELM_BINARIES = ("helm", "helm3")


class HelmError(RuntimeError):
    """helm exited non-zero; the message is helm's own stderr."""


@dataclass(frozen=True)
class Helm:
    """One helm binary (`helm` = v4, `helm3` = v3 in .tools/bin)."""

    binary: Path

    @classmethod
    def pinned(cls, name: str = "helm") -> Helm:
        return cls(paths.tool(name))

    def run(self, *args: str) -> str:
        result = subprocess.run(
            [str(self.binary), *args], capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise HelmError(result.stderr.strip() or result.stdout.strip())
        return result.stdout

    def version(self) -> str:
        return self.run("version", "--short").strip()

    def template(
        self,
        chart: Path,
        values_files: Sequence[Path] = (),
        set_values: Sequence[str] = (),
        release: str = "rs",
        namespace: str = "default",
        kube_version: str | None = None,
    ) -> list[dict]:
        """Renders the chart (templates and hooks) and returns its objects."""
        args = ["template", release, str(chart), "--namespace", namespace]
        for values in values_files:
            args += ["--values", str(values)]
        for value in set_values:
            args += ["--set", value]
        if kube_version:
            args += ["--kube-version", kube_version]
        return [doc for doc in yaml.safe_load_all(self.run(*args)) if doc]

    def lint(self, chart: Path, values_files: Sequence[Path] = ()) -> str:
        args = ["lint", "--strict", str(chart)]
        for values in values_files:
            args += ["--values", str(values)]
        return self.run(*args)


def ci_values_files(chart: Path) -> list[Path]:
    """The chart's `ci/*-values.yaml` files, each a lint and render case."""
    return sorted((chart / "ci").glob("*-values.yaml"))
