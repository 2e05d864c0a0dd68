"""kind (a laptop with Docker) as a provider: real pods, metrics-server, no node autoscaler."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from tooling.errors import UserError
from tooling.kind import create_kind_cluster, delete_kind_cluster
from tooling.providers.base import ClusterSpec, RunSpec, Say, cluster_name
from tooling.providers.existing import locust_settings, real_cluster_target
from tooling.runs.story import StoryTarget

NEEDS_A_MODEL_URI = (
    "kind pods cannot read your gs:// bucket: give --model-uri https://…/model.tar.gz "
    "(`resnet-serving model package` makes the tarball; serve it where the cluster can reach it)"
)


class KindProvider:
    name = "kind"
    default_cluster_name = "resnet-kind"

    def create(self, cluster: ClusterSpec, say: Say) -> Path:
        return create_kind_cluster(cluster_name(cluster, self), cluster.kubeconfig, say)

    def credentials(self, cluster: ClusterSpec, say: Say) -> Path:
        raise UserError("credentials is for --provider gke; `cluster create` writes kind's")

    def delete(self, cluster: ClusterSpec, say: Say) -> None:
        delete_kind_cluster(cluster_name(cluster, self), say)

    @contextlib.contextmanager
    def story_target(self, cluster: ClusterSpec, run: RunSpec, say: Say) -> Iterator[StoryTarget]:
        if not run.model_uri:
            raise UserError(NEEDS_A_MODEL_URI)
        locust_settings(run.load)  # a bad shape fails before the cluster is made
        kubeconfig = self.create(cluster, say)
        yield real_cluster_target(self.name, kubeconfig, run.model_uri, run, say)

    def uploaded_model(self, cluster: ClusterSpec, run: RunSpec) -> str | None:
        return None  # kind reads a model the user serves; nothing was uploaded

    def delete_uploaded_model(self, cluster: ClusterSpec, run: RunSpec, say: Say) -> None:
        return None

    def plan(self, cluster: ClusterSpec, run: RunSpec) -> list[str]:
        raise UserError("--dry-run describes GKE resources; use it with --provider gke")
