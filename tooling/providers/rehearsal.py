"""The local rehearsal cluster as a provider: kwok's control plane with its node pool and node
autoscaler (tooling.rehearsal). `cluster create` and the story's target start it the same way
(start_cluster); the target deletes it at the end when the run asks for it."""

from __future__ import annotations

import contextlib
from pathlib import Path

from tooling.console import Say
from tooling.errors import UserError
from tooling.providers.base import RunSpec
from tooling.rehearsal.cluster import delete_cluster, kwokctl, running_clusters
from tooling.rehearsal.rehearse import RehearsalClusterSpec, rehearsal_target, start_cluster
from tooling.runs.target import StoryTarget


class RehearsalProvider:
    name = "rehearsal"

    def create(self, cluster: RehearsalClusterSpec, say: Say) -> Path:
        started = start_cluster(cluster, say)
        # the stand-in scales only while a command runs it (a thread of this process); the
        # real Cluster Autoscaler is a process of the cluster's and goes on
        started.nodes.stop()
        return started.kubeconfig

    def credentials(self, cluster: RehearsalClusterSpec, say: Say) -> Path:
        if cluster.name not in running_clusters():
            raise UserError(
                f"no rehearsal cluster {cluster.name} runs: start one with "
                "`resnet-serving cluster create --provider rehearsal`"
            )
        cluster.kubeconfig.parent.mkdir(parents=True, exist_ok=True)
        cluster.kubeconfig.write_text(kwokctl("get", "kubeconfig", f"--name={cluster.name}").stdout)
        return cluster.kubeconfig

    def delete(self, cluster: RehearsalClusterSpec, say: Say) -> None:
        delete_cluster(cluster.name)
        say(f"cluster: ✓ {cluster.name} deleted")

    def story_target(
        self, cluster: RehearsalClusterSpec, run: RunSpec, say: Say
    ) -> contextlib.AbstractContextManager[StoryTarget]:
        return rehearsal_target(cluster, run, say)
