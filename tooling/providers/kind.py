"""kind (a laptop with Docker) as a provider: real pods, metrics-server, no node autoscaler."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

from tooling.console import Say
from tooling.errors import UserError
from tooling.kind import create_kind_cluster, delete_kind_cluster, write_kind_kubeconfig
from tooling.providers.base import RunSpec
from tooling.providers.kind_and_gke import real_cluster_target
from tooling.runs.target import StoryTarget

NEEDS_A_MODEL_URI = (
    "kind pods cannot read your gs:// bucket: give --model-uri https://…/model.tar.gz "
    "(`resnet-serving model package` makes the tarball; serve it where the cluster can reach it)"
)


@dataclass(frozen=True)
class KindClusterSpec:
    kubeconfig: Path
    name: str = "resnet-kind"


class KindProvider:
    name = "kind"

    def create(self, cluster: KindClusterSpec, say: Say) -> Path:
        return create_kind_cluster(cluster.name, cluster.kubeconfig, say)

    def credentials(self, cluster: KindClusterSpec, say: Say) -> Path:
        return write_kind_kubeconfig(cluster.name, cluster.kubeconfig)

    def delete(self, cluster: KindClusterSpec, say: Say) -> None:
        delete_kind_cluster(cluster.name, say)

    def story_target(
        self, cluster: KindClusterSpec, run: RunSpec, say: Say
    ) -> contextlib.AbstractContextManager[StoryTarget]:
        if not run.model_uri:
            raise UserError(NEEDS_A_MODEL_URI)
        return real_cluster_target(self, cluster, run, say, lambda: run.model_uri)
