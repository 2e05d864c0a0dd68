"""The local rehearsal cluster as a provider: kwok's control plane with its node pool and node
autoscaler; the story runs there with the load model (tooling.rehearsal)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from kubernetes import client

from tooling.errors import UserError
from tooling.kube import api_client
from tooling.providers.base import ClusterSpec, RunSpec, Say, cluster_name
from tooling.rehearsal.cluster import create_cluster, delete_cluster, kwokctl, running_clusters
from tooling.rehearsal.node_autoscalers import NodePool, node_autoscaler
from tooling.rehearsal.profiles import profile
from tooling.rehearsal.rehearse import RehearsalSpec, rehearsal_target
from tooling.runs.story import StoryTarget

# The fast profile's steps are short so a whole run fits in a few minutes; lab keeps the lab's.
STEP_SECONDS = {"fast": 8.0, "lab": 60.0}


def node_pool(cluster: ClusterSpec) -> NodePool:
    return NodePool(cluster.min_nodes, cluster.max_nodes, cluster.autoscaling_profile)


class RehearsalProvider:
    name = "rehearsal"
    default_cluster_name = "resnet-rehearsal"

    def create(self, cluster: ClusterSpec, say: Say) -> Path:
        name, timings = cluster_name(cluster, self), profile(cluster.profile)
        pool = node_pool(cluster)
        try:
            created = create_cluster(name, cluster.kubeconfig, timings, say)
            core = client.CoreV1Api(api_client(created.kubeconfig))
            nodes = node_autoscaler(
                cluster.node_autoscaler, core, name, created.kubeconfig, timings, pool
            )
            nodes.start()
        except BaseException:  # Ctrl-C or a failure: leave no process or port behind
            delete_cluster(name)
            raise
        say(f"cluster: ✓ {name} with {pool.min_nodes} e2-standard-4 node(s); nodes: {nodes.name}")
        return created.kubeconfig

    def credentials(self, cluster: ClusterSpec, say: Say) -> Path:
        name = cluster_name(cluster, self)
        if name not in running_clusters():
            raise UserError(
                f"no rehearsal cluster {name} runs: start one with "
                "`resnet-serving cluster create --provider rehearsal`"
            )
        cluster.kubeconfig.parent.mkdir(parents=True, exist_ok=True)
        cluster.kubeconfig.write_text(kwokctl("get", "kubeconfig", f"--name={name}").stdout)
        return cluster.kubeconfig

    def delete(self, cluster: ClusterSpec, say: Say) -> None:
        name = cluster_name(cluster, self)
        delete_cluster(name)
        say(f"cluster: ✓ {name} deleted")

    @contextlib.contextmanager
    def story_target(self, cluster: ClusterSpec, run: RunSpec, say: Say) -> Iterator[StoryTarget]:
        timings = profile(cluster.profile)
        spec = RehearsalSpec(
            run_dir=run.run_dir,
            profile=timings,
            shape=run.load.schedule(STEP_SECONDS[timings.name]),
            values_files=run.values_files,
            pool=node_pool(cluster),
            node_autoscaler=cluster.node_autoscaler,
            cluster_name=cluster_name(cluster, self),
            keep_cluster=not run.down,
            kubeconfig=cluster.kubeconfig,
            load=run.load.source,
        )
        with rehearsal_target(spec, say) as target:
            yield target

    def uploaded_model(self, cluster: ClusterSpec, run: RunSpec) -> str | None:
        return None  # the rehearsal's pods run no containers: no model is fetched

    def delete_uploaded_model(self, cluster: ClusterSpec, run: RunSpec, say: Say) -> None:
        return None

    def plan(self, cluster: ClusterSpec, run: RunSpec) -> list[str]:
        raise UserError("--dry-run describes GKE resources; use it with --provider gke")
