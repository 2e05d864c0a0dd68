"""`up` and `down`: from nothing to a load-tested, autoscaling deployment and back, on any
provider.

up: the provider's story target (rehearsal: the local cluster; kind and GKE: the cluster
created or reused, the model where its pods read it) → the story (both charts, the first
replica Ready, the load, scale-out and scale-in recorded) → the run directory's timeline,
events, picture and summary → `down` if asked. down: both releases uninstalled, the cluster
deleted, and the model `up` uploaded removed.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from tooling import releases
from tooling.names import APP_NAMESPACE, LOAD_RELEASE, RELEASE
from tooling.providers import ClusterSpec, RunSpec, provider
from tooling.providers.base import Say, cluster_name
from tooling.runs.story import StoryResult, StorySpec, run_story


def up(cluster: ClusterSpec, run: RunSpec, say: Say) -> StoryResult:
    chosen = provider(cluster.provider)
    with chosen.story_target(cluster, run, say) as target:
        result = run_story(target, StorySpec(run.run_dir, run.values_files), say)
    if run.down and cluster.provider != "rehearsal":  # the rehearsal's target deleted itself
        down(cluster, run, say, confirm=lambda question: True)
    return result


def down(cluster: ClusterSpec, run: RunSpec, say: Say, confirm: Callable[[str], bool]) -> bool:
    """Deletes what `up` made, after `confirm` says yes to what will go; False if it says no."""
    chosen = provider(cluster.provider)
    what = [f"the {chosen.name} cluster {cluster_name(cluster, chosen)}"]
    uploaded = chosen.uploaded_model(cluster, run)
    if uploaded:
        what.append(f"the objects under {uploaded}")
    if not confirm(f"Delete {' and '.join(what)}? [y/N] "):
        say("down: nothing deleted")
        return False
    if cluster.kubeconfig.is_file():
        for release in (LOAD_RELEASE, RELEASE):
            try:
                releases.uninstall(cluster.kubeconfig, release, APP_NAMESPACE, wait=True)
            except Exception as error:
                say(f"down: could not uninstall {release} ({str(error).strip()[:200]})")
    chosen.delete(cluster, say)
    chosen.delete_uploaded_model(cluster, run, say)
    say(f"down: ✓ done at {time.strftime('%H:%M:%S')}")
    return True
