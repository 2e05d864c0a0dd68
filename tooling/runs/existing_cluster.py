"""A cluster that already runs (kind, GKE, any kubeconfig) as a story target.

Real TF Serving pods fetch the model from `model_uri`; real Locust pods make the load. GKE's
node-pool autoscaler is the cluster autoscaler there; kind and the node provider have none.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tooling.errors import UserError
from tooling.runs.locust_load import LocustSettings, start_locust_load
from tooling.runs.target import StoryTarget

# After the load: HPA downscale stabilization (5 min) plus, on GKE, the cluster autoscaler's
# scale-down-unneeded time (10 min) for each node to go, one after another, plus slack.
SCALE_IN_TIMEOUTS = {"kind": 600.0, "gke": 2400.0, "node": 600.0}
NODE_AUTOSCALERS = {"kind": None, "gke": "GKE's cluster autoscaler", "node": None}
READY_TIMEOUT_SECONDS = 900.0  # image pull + model download + load + warmup
SAMPLE_SECONDS = 5.0


def existing_cluster_target(
    kubeconfig: Path,
    provider: str,
    model_uri: str,
    load: LocustSettings,
    say: Callable[[str], None] = print,
    scale_in_timeout: float | None = None,
    server_values: tuple[dict, ...] = (),
) -> StoryTarget:
    """The cluster as the story's target; SERVER_VALUES go before the model's location (a
    cluster's own values: the node's local images)."""
    if provider not in SCALE_IN_TIMEOUTS:
        raise UserError(f"provider {provider!r}: use one of {', '.join(SCALE_IN_TIMEOUTS)}")
    if not kubeconfig.is_file():
        raise UserError(f"no kubeconfig at {kubeconfig}")
    if not model_uri:
        raise UserError(
            "a real cluster needs the model's location: gs://BUCKET/PATH or an https tarball "
            "(`resnet-serving model package` makes one)"
        )
    return StoryTarget(
        provider=provider,
        kubeconfig=kubeconfig,
        start_load=lambda context: start_locust_load(context, load, say),
        node_autoscaler=NODE_AUTOSCALERS[provider],
        ready_timeout=READY_TIMEOUT_SECONDS,
        scale_in_timeout=scale_in_timeout or SCALE_IN_TIMEOUTS[provider],
        sample_seconds=SAMPLE_SECONDS,
        server_values=(
            *server_values,
            {"model": {"source": {"uri": model_uri, "existingClaim": ""}}},
        ),
    )
