"""What every kind of cluster offers the commands: the Provider core (create, credentials,
delete, the story's target) that each provider implements over its own typed cluster spec, and
the optional capabilities only some have (a dry run's plan, a model uploaded for the pods),
checked with isinstance."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Protocol, TypeVar, runtime_checkable

from tooling.console import Say
from tooling.runs.run_spec import LoadSpec, RunSpec
from tooling.runs.target import StoryTarget

DEFAULT_KUBECONFIG = Path("runs/cluster/kubeconfig")

__all__ = [
    "DEFAULT_KUBECONFIG",
    "ClusterSpec",
    "LoadSpec",
    "PlansResources",
    "Provider",
    "RunSpec",
    "UploadsModel",
]


class ClusterSpec(Protocol):
    """What every provider's own cluster spec has."""

    @property
    def name(self) -> str: ...

    @property
    def kubeconfig(self) -> Path: ...


Spec = TypeVar("Spec", bound=ClusterSpec, contravariant=True)


class Provider(Protocol[Spec]):
    """The core every provider implements."""

    name: str

    def create(self, cluster: Spec, say: Say) -> Path:
        """Creates (or reuses) the cluster; returns the kubeconfig written."""

    def credentials(self, cluster: Spec, say: Say) -> Path:
        """Writes the kubeconfig of an existing cluster."""

    def delete(self, cluster: Spec, say: Say) -> None: ...

    def story_target(
        self, cluster: Spec, run: RunSpec, say: Say
    ) -> contextlib.AbstractContextManager[StoryTarget]:
        """The cluster made ready for the story (created, the model where pods read it); when
        `run.down`, the target deletes what it made as it closes."""


@runtime_checkable
class PlansResources(Protocol):
    """A provider that can say what `up` would create without calling anything (`--dry-run`)."""

    def plan(self, cluster: ClusterSpec, run: RunSpec) -> list[str]: ...


@runtime_checkable
class UploadsModel(Protocol):
    """A provider that puts the model where its pods read it (`down` deletes it)."""

    def uploaded_model(self, cluster: ClusterSpec, run: RunSpec) -> str | None:
        """Where `up` put the model for the pods, or None (e.g. --model-uri was given)."""

    def delete_uploaded_model(self, cluster: ClusterSpec, run: RunSpec, say: Say) -> None: ...
