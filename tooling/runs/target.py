"""What the story runs on: a StoryTarget holds what differs between kinds of cluster (how the
load is made, extra values, timeouts, background work), and a StoryContext is what a target's
load starter is told of the cluster."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kubernetes import client

from tooling.runs.timeline import LoadSource


@dataclass(frozen=True)
class StoryContext:
    """What a target's load starter gets: the cluster and where the model server is."""

    api: client.ApiClient
    kubeconfig: Path
    namespace: str
    server_name: str
    selector: str


@dataclass(frozen=True)
class StoryTarget:
    """A cluster the story runs on, and what differs between kinds of cluster."""

    provider: str  # rehearsal, kind or gke
    kubeconfig: Path
    start_load: Callable[[StoryContext], LoadSource]
    node_autoscaler: str | None  # what scales the nodes (named in the report); None: nothing
    ready_timeout: float  # first replica Ready: model fetch and load included
    scale_in_timeout: float  # after the load ends
    sample_seconds: float
    server_values: tuple[dict, ...] = ()  # applied after the user's values files
    settled: Callable[[], bool] = lambda: True  # e.g. no node still being provisioned
    background: tuple[Callable[[threading.Event], None], ...] = ()
    collect: Callable[[Path], None] = lambda run_dir: None  # e.g. logs into the run directory
    # what the pods scale on and what carries it (named in the report); None: told from the
    # values alone (tooling.runs.scaling_signal)
    scaling_signal: str | None = None

    @property
    def node_autoscaling(self) -> bool:
        return self.node_autoscaler is not None
