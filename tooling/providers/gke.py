"""GKE as a provider: a cluster with an autoscaled e2-standard-4 pool and Workload Identity
(google-cloud-container), the model exported and uploaded to a bucket the model server reads
through Workload Identity (google-cloud-storage), real pods and the Locust chart."""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from tooling.gke.bucket import READER_ROLE
from tooling.gke.cluster_request import GkeClusterSpec
from tooling.gke.clusters import GkeClusters
from tooling.names import APP_NAMESPACE, LOAD_RELEASE, MODEL_NAME, RELEASE, SERVER_NAME, SERVER_URL
from tooling.providers.base import RunSpec, Say
from tooling.providers.existing import real_cluster_target
from tooling.runs.story import StoryTarget


@dataclass(frozen=True)
class GkeProviderSpec:
    """The GKE cluster asked for, where its kubeconfig goes, and the model's bucket and
    weights when `up` exports and uploads it."""

    request: GkeClusterSpec
    kubeconfig: Path
    bucket: str = ""  # default PROJECT-resnet-serving
    weights: str = "random"

    @property
    def name(self) -> str:
        return self.request.name


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
        export_model(model_dir.parent, MODEL_NAME, 1, cluster.weights)
    request = cluster.request
    client = storage.Client(project=request.project)
    bucket = ensure_bucket(client, bucket_name(cluster), region_of(request.location), say)
    upload(model_dir, model_uri(cluster, run), progress=say, client=client)
    bucket.reload()
    member = ksa_principal(bucket.project_number, request.project, APP_NAMESPACE, SERVER_NAME)
    grant_read(bucket, member, say)
    return model_uri(cluster, run)


class GkeProvider:
    """The core, and both optional capabilities: a dry run's plan and the uploaded model."""

    name = "gke"

    def create(self, cluster: GkeProviderSpec, say: Say) -> Path:
        from tooling.gke.kubeconfig import write_credentials

        spec = cluster.request
        created = gke_clusters(say).create(spec)
        return write_credentials(cluster.kubeconfig, spec, created)

    def credentials(self, cluster: GkeProviderSpec, say: Say) -> Path:
        from tooling.errors import UserError
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
        return real_cluster_target(self, cluster, run, say, lambda: upload_model(cluster, run, say))

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
        """What `up` would create, exactly, without calling anything."""
        from google.cloud import container_v1

        from tooling.gke.bucket import ksa_principal
        from tooling.gke.cluster_request import cluster_request

        spec = cluster.request
        request = container_v1.Cluster.to_json(
            cluster_request(spec),
            use_integers_for_enums=False,
            always_print_fields_with_no_presence=False,
        )
        lines = [
            f"1. GKE cluster {spec.path} (ClusterManager.CreateCluster; reused if it exists"
            f"{'; regional, so node counts are per zone' if spec.regional else ''}):",
            *("   " + line for line in request.splitlines()),
            f"2. kubeconfig context {spec.kube_context} in {cluster.kubeconfig} "
            "(user: gke-gcloud-auth-plugin)",
        ]
        uri = model_uri(cluster, run)
        if run.model_uri:
            lines.append(f"3. model: --model-uri {run.model_uri} (nothing uploaded)")
        else:
            member = ksa_principal("PROJECT_NUMBER", spec.project, APP_NAMESPACE, SERVER_NAME)
            lines += [
                f"3. bucket gs://{bucket_name(cluster)} in {region_of(spec.location)} "
                "(uniform bucket-level access; reused if it exists)",
                f"   objects {uri}/1/… (ResNet101 SavedModel, about 176 MB, "
                f"{cluster.weights} weights)",
                f"   IAM binding {READER_ROLE} → {member}",
            ]
        values = ", ".join(str(path) for path in run.values_files)
        lines += [
            f"4. helm release {RELEASE} (charts/resnet-serving) in namespace {APP_NAMESPACE} "
            f"(Pod Security restricted), values {values}, model.source.uri={uri}",
            f"5. helm release {LOAD_RELEASE} (charts/locust): "
            + json.dumps(run.load.locust_settings().values(SERVER_URL), sort_keys=True),
            f"6. run directory {run.run_dir}: timeline.csv, events.csv, timeline.png, summary.md",
        ]
        if run.down:
            lines.append("7. then `down`: both releases, the cluster, and the model's objects")
        return lines
