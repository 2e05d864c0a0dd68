"""Where clusters come from: one Provider per kind (the local rehearsal, the real node on this
machine, kind, GKE), each over
its own cluster spec with create, credentials, delete and the autoscaling story's target
(tooling.providers.base); GKE's extras (a dry run's plan, the uploaded model) are optional
capabilities."""

from __future__ import annotations

from tooling.errors import UserError
from tooling.providers.base import (
    ClusterSpec,
    LoadSpec,
    PlansResources,
    Provider,
    RunSpec,
    UploadsModel,
)

PROVIDERS = ("rehearsal", "node", "kind", "gke")

__all__ = [
    "PROVIDERS",
    "ClusterSpec",
    "LoadSpec",
    "PlansResources",
    "Provider",
    "RunSpec",
    "UploadsModel",
    "provider",
]


def provider(name: str) -> Provider:
    """The provider of that name (imported on use: GKE's clients load only for GKE)."""
    if name == "rehearsal":
        from tooling.providers.rehearsal import RehearsalProvider

        return RehearsalProvider()
    if name == "node":
        from tooling.providers.node import NodeProvider

        return NodeProvider()
    if name == "kind":
        from tooling.providers.kind import KindProvider

        return KindProvider()
    if name == "gke":
        from tooling.providers.gke import GkeProvider

        return GkeProvider()
    raise UserError(f"--provider {name!r}: use one of {', '.join(PROVIDERS)}")
