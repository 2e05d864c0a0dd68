"""What kind and GKE share: the story runs on a real cluster with real TF Serving pods reading
the model from a URI, and the Locust chart making the load."""

from __future__ import annotations

import math
from pathlib import Path

from tooling.loadgen.load_shapes import shape_seconds
from tooling.providers.base import LoadSpec, RunSpec, Say
from tooling.runs.existing_cluster import existing_cluster_target
from tooling.runs.locust_load import LocustSettings
from tooling.runs.story import StoryTarget

LOCUST_START_SECONDS = 60  # workers connecting and users spawning, beyond the shape itself


def locust_settings(load: LoadSpec) -> LocustSettings:
    """The Locust chart's values for the load; a bad shape fails here, before anything is made."""
    shape = load.schedule()
    run_time = f"{math.ceil(shape_seconds(shape)) + LOCUST_START_SECONDS}s"
    environment = load.environment()
    if load.shape.startswith("file:"):
        csv_text = Path(load.shape.removeprefix("file:")).read_text()
        return LocustSettings("file", environment, csv_text, load.workers, run_time)
    return LocustSettings(load.shape, environment, "", load.workers, run_time)


def real_cluster_target(
    provider: str, kubeconfig: Path, model_uri: str, run: RunSpec, say: Say
) -> StoryTarget:
    return existing_cluster_target(kubeconfig, provider, model_uri, locust_settings(run.load), say)
