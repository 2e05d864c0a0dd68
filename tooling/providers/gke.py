"""GKE as a provider: a cluster with an autoscaled e2-standard-4 pool and Workload Identity
(google-cloud-container), the model exported and uploaded to a bucket the model server reads
through Workload Identity (google-cloud-storage), real pods and the Locust chart. When the values
ask for KEDA mode, KEDA's Helm chart and, with `--prometheus gmp`, Managed Service for
Prometheus' PodMonitoring and query frontend go in before the release
(tooling.gke.request_autoscaling)."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tooling.console import Say, import_tensorflow
from tooling.errors import UserError
from tooling.gke.bucket import READER_ROLE
from tooling.gke.cluster_request import GkeClusterSpec
from tooling.gke.clusters import GkeClusters
from tooling.gke.keda_install import GMP
from tooling.gke.request_autoscaling import KedaSetup, keda_setup
from tooling.names import APP_NAMESPACE, LOAD_RELEASE, MODEL_NAME, RELEASE, SERVER_NAME, SERVER_URL
from tooling.providers.base import ClusterSpec, RunSpec
from tooling.providers.kind_and_gke import tear_down
from tooling.runs.existing_cluster import existing_cluster_target
from tooling.runs.target import StoryTarget


@dataclass(frozen=True)
class GkeProviderSpec:
    """The GKE cluster asked for, where its kubeconfig goes, and the model's bucket and
    weights when `up` exports and uploads it."""

    request: GkeClusterSpec
    kubeconfig: Path
    bucket: str = ""  # default PROJECT-resnet-serving
    weights: str = "random"
    prometheus: str = ""  # KEDA mode: gmp, or Prometheus' URL in the cluster ("": the values')

    @property
    def name(self) -> str:
        return self.request.name


def with_prometheus(cluster: ClusterSpec, prometheus: str) -> ClusterSpec:
    """The cluster spec with `--prometheus`: GKE's only (gmp also asks the new cluster for
    managed collection)."""
    if not prometheus:
        return cluster
    if not isinstance(cluster, GkeProviderSpec):
        raise UserError(
            "--prometheus is for --provider gke (the rehearsal runs its own Prometheus and KEDA)"
        )
    request = dataclasses.replace(cluster.request, managed_prometheus=prometheus == GMP)
    return dataclasses.replace(cluster, request=request, prometheus=prometheus)


def gke_clusters(say: Say) -> GkeClusters:
    from tooling.gke.clusters import LOCAL_ENDPOINT_VARIABLE, make_client

    local = bool(os.environ.get(LOCAL_ENDPOINT_VARIABLE))  # answers at once: poll quickly
    return GkeClusters(make_client(), say=say, poll_seconds=0.2 if local else 10.0)


def bucket_name(cluster: GkeProviderSpec) -> str:
    return cluster.bucket or f"{cluster.request.project}-resnet-serving"


def model_uri(cluster: GkeProviderSpec, run: RunSpec) -> str:
    return run.model_uri or f"gs://{bucket_name(cluster)}/{MODEL_NAME}"


def region_of(location: str) -> str:
    parts = location.split("-")
    return "-".join(parts[:2]) if len(parts) > 2 else location


def upload_model(cluster: GkeProviderSpec, run: RunSpec, say: Say) -> str:
    """Exports the model (once), uploads it, lets the model server's KSA read it."""
    if run.model_uri:
        return run.model_uri
    from google.cloud import storage

    from tooling.gke.bucket import ensure_bucket, grant_read, ksa_principal
    from tooling.model.export import export_model
    from tooling.model.package import upload

    model_dir = run.run_dir.parent / "model" / MODEL_NAME
    if not (model_dir / "1" / "saved_model.pb").is_file():
        say(f"up: exporting ResNet101 ({cluster.weights} weights) …")
        import_tensorflow()
        export_model(model_dir.parent, MODEL_NAME, 1, cluster.weights)
    request = cluster.request
    client = storage.Client(project=request.project)
    bucket = ensure_bucket(client, bucket_name(cluster), region_of(request.location), say)
    upload(model_dir, model_uri(cluster, run), progress=say, client=client)
    bucket.reload()
    member = ksa_principal(bucket.project_number, request.project, APP_NAMESPACE, SERVER_NAME)
    grant_read(bucket, member, say)
    return model_uri(cluster, run)


def request_autoscaling(cluster: GkeProviderSpec, run: RunSpec) -> KedaSetup | None:
    return keda_setup(run, cluster.prometheus, cluster.request.project, model_uri(cluster, run))


@contextlib.contextmanager
def gke_target(
    provider: GkeProvider, cluster: GkeProviderSpec, run: RunSpec, say: Say
) -> Iterator[StoryTarget]:
    """The cluster created (or reused), the model uploaded, KEDA (and GMP's parts) installed in
    KEDA mode, as a story target; torn down afterwards when `run.down` and the story ended."""
    from tooling.gke.request_autoscaling import install

    settings = run.load.locust_settings()  # a bad shape fails before the cluster is made
    keda = request_autoscaling(cluster, run)  # and so does KEDA mode without a Prometheus
    kubeconfig = provider.create(cluster, say)
    uri = upload_model(cluster, run, say)
    server_values: tuple[dict, ...] = ()
    if keda is not None:
        server_values = (install(kubeconfig, keda, cluster.request.project, say),)
    yield existing_cluster_target(
        kubeconfig, provider.name, uri, settings, say, server_values=server_values
    )
    if run.down:
        tear_down(provider, cluster, run, say)


class GkeProvider:
    """The core, and both optional capabilities: a dry run's plan and the uploaded model."""

    name = "gke"

    def create(self, cluster: GkeProviderSpec, say: Say) -> Path:
        from tooling.gke.kubeconfig import write_credentials

        spec = cluster.request
        created = gke_clusters(say).create(spec)
        if cluster.prometheus == GMP:
            from tooling.gke.managed_prometheus import check_collection

            check_collection(created, spec)
        return write_credentials(cluster.kubeconfig, spec, created)

    def credentials(self, cluster: GkeProviderSpec, say: Say) -> Path:
        from tooling.gke.kubeconfig import write_credentials

        spec = cluster.request
        found = gke_clusters(say).find(spec)
        if found is None:
            raise UserError(
                f"no cluster {spec.name} in {spec.project}/{spec.location}: create it with "
                "`resnet-serving cluster create --provider gke ...`"
            )
        path = write_credentials(cluster.kubeconfig, spec, found)
        say(f"cluster: ✓ context {spec.kube_context} in {path} (uses gke-gcloud-auth-plugin)")
        return path

    def delete(self, cluster: GkeProviderSpec, say: Say) -> None:
        gke_clusters(say).delete(cluster.request)

    def story_target(
        self, cluster: GkeProviderSpec, run: RunSpec, say: Say
    ) -> contextlib.AbstractContextManager[StoryTarget]:
        return gke_target(self, cluster, run, say)

    def uploaded_model(self, cluster: GkeProviderSpec, run: RunSpec) -> str | None:
        return None if run.model_uri else model_uri(cluster, run)

    def delete_uploaded_model(self, cluster: GkeProviderSpec, run: RunSpec, say: Say) -> None:
        if run.model_uri:
            return
        from google.cloud import storage

        from tooling.gke.bucket import delete_prefix

        bucket = storage.Client(project=cluster.request.project).bucket(bucket_name(cluster))
        delete_prefix(bucket, MODEL_NAME, say)

    def plan(self, cluster: GkeProviderSpec, run: RunSpec) -> list[str]:
        """What `up` would create, exactly, without calling anything (but helm rendering the
        chart locally in KEDA mode, to show the ScaledObject's query)."""
        from google.cloud import container_v1

        from tooling.gke.bucket import ksa_principal
        from tooling.gke.cluster_request import cluster_request
        from tooling.gke.request_autoscaling import plan_lines

        spec = cluster.request
        keda = request_autoscaling(cluster, run)
        request = container_v1.Cluster.to_json(
            cluster_request(spec),
            use_integers_for_enums=False,
            always_print_fields_with_no_presence=False,
        )
        steps = [
            [
                f"GKE cluster {spec.path} (ClusterManager.CreateCluster; reused if it exists"
                f"{'; regional, so node counts are per zone' if spec.regional else ''}):",
                *("   " + line for line in request.splitlines()),
            ],
            [
                f"kubeconfig context {spec.kube_context} in {cluster.kubeconfig} "
                "(user: gke-gcloud-auth-plugin)"
            ],
        ]
        uri = model_uri(cluster, run)
        if run.model_uri:
            steps.append([f"model: --model-uri {run.model_uri} (nothing uploaded)"])
        else:
            member = ksa_principal("PROJECT_NUMBER", spec.project, APP_NAMESPACE, SERVER_NAME)
            steps.append(
                [
                    f"bucket gs://{bucket_name(cluster)} in {region_of(spec.location)} "
                    "(uniform bucket-level access; reused if it exists)",
                    f"   objects {uri}/1/… (ResNet101 SavedModel, about 176 MB, "
                    f"{cluster.weights} weights)",
                    f"   IAM binding {READER_ROLE} → {member}",
                ]
            )
        if keda is not None:
            steps += plan_lines(keda, spec.project)
        values = ", ".join(str(path) for path in run.values_files)
        address = f", autoscaling.requests.keda.serverAddress={keda.server_address}" if keda else ""
        steps += [
            [
                f"helm release {RELEASE} (charts/resnet-serving) in namespace {APP_NAMESPACE} "
                f"(Pod Security restricted), values {values}, model.source.uri={uri}{address}"
            ],
            [
                f"helm release {LOAD_RELEASE} (charts/locust): "
                + json.dumps(run.load.locust_settings().values(SERVER_URL), sort_keys=True)
            ],
            [f"run directory {run.run_dir}: timeline.csv, events.csv, timeline.png, summary.md"],
        ]
        if run.down:
            what = "both releases, the cluster, and the model's objects"
            steps.append([f"then `down`: {what}"])
        lines: list[str] = []
        for number, (title, *details) in enumerate(steps, start=1):
            lines += [f"{number}. {title}", *details]
        return lines
