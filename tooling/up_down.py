"""`up` and `down`: from nothing to a load-tested, autoscaling deployment and back, on any
provider.

up: the provider's story target (rehearsal: the local cluster; kind and GKE: the cluster
created or reused, the model where its pods read it) → the story (both charts, the first
replica Ready, the load, scale-out and scale-in recorded) → the run directory's timeline,
events, picture and summary; with `run.down` the target deletes what it made as it closes.
down: both releases uninstalled, the cluster deleted, and the model `up` uploaded removed.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from tooling.console import Say
from tooling.providers.base import ClusterSpec, Provider, RunSpec, UploadsModel
from tooling.providers.kind_and_gke import tear_down
from tooling.runs.story import StoryResult, StorySpec, run_story


def up(chosen: Provider, cluster: ClusterSpec, run: RunSpec, say: Say) -> StoryResult:
    with chosen.story_target(cluster, run, say) as target:
        return run_story(target, StorySpec(run.run_dir, run.values_files), say)


def down(
    chosen: Provider, cluster: ClusterSpec, run: RunSpec, say: Say, confirm: Callable[[str], bool]
) -> bool:
    """Deletes what `up` made, after `confirm` says yes to what will go; False if it says no."""
    what = [f"the {chosen.name} cluster {cluster.name}"]
    uploaded = chosen.uploaded_model(cluster, run) if isinstance(chosen, UploadsModel) else None
    if uploaded:
        what.append(f"the objects under {uploaded}")
    if not confirm(f"Delete {' and '.join(what)}? [y/N] "):
        say("down: nothing deleted")
        return False
    tear_down(chosen, cluster, run, say)
    say(f"down: ✓ done at {time.strftime('%H:%M:%S')}")
    return True
