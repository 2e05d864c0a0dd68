"""What kind and GKE share: the story runs on a real cluster with real TF Serving pods reading
the model from a URI and the Locust chart making the load; `down` (or `up --down`) uninstalls
both releases, deletes the cluster and any model uploaded for it."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from tooling import releases
from tooling.console import Say
from tooling.names import APP_NAMESPACE, LOAD_RELEASE, RELEASE
from tooling.providers.base import ClusterSpec, Provider, RunSpec, UploadsModel
from tooling.runs.existing_cluster import existing_cluster_target
from tooling.runs.target import StoryTarget


@contextlib.contextmanager
def real_cluster_target(
    provider: Provider, cluster: ClusterSpec, run: RunSpec, say: Say, place_model: Callable[[], str]
) -> Iterator[StoryTarget]:
    """The cluster created (or reused), the model placed where its pods read it, as a story
    target; torn down afterwards when `run.down` and the story ended."""
    settings = run.load.locust_settings()  # a bad shape fails before the cluster is made
    kubeconfig = provider.create(cluster, say)
    model_uri = place_model()
    yield existing_cluster_target(kubeconfig, provider.name, model_uri, settings, say)
    if run.down:
        tear_down(provider, cluster, run, say)


def tear_down(provider: Provider, cluster: ClusterSpec, run: RunSpec, say: Say) -> None:
    """Both releases (where the kubeconfig is), the cluster, and the model uploaded for it."""
    if cluster.kubeconfig.is_file():
        for release in (LOAD_RELEASE, RELEASE):
            try:
                releases.uninstall(cluster.kubeconfig, release, APP_NAMESPACE, wait=True)
            except Exception as error:
                say(f"down: could not uninstall {release} ({str(error).strip()[:200]})")
    provider.delete(cluster, say)
    if isinstance(provider, UploadsModel):
        provider.delete_uploaded_model(cluster, run, say)
