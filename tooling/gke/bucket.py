"""The model's bucket: created with uniform access, read by the model server's Kubernetes
ServiceAccount through Workload Identity Federation for GKE (an IAM binding on the bucket to
the KSA's principal; no Google service account or key needed)."""

from __future__ import annotations

from collections.abc import Callable

from google.api_core import exceptions
from google.cloud import storage

from tooling.gke.errors import readable

READER_ROLE = "roles/storage.objectViewer"


def ksa_principal(project_number: int | str, project_id: str, namespace: str, ksa: str) -> str:
    """The IAM principal of a Kubernetes ServiceAccount in the cluster's workload pool."""
    return (
        f"principal://iam.googleapis.com/projects/{project_number}/locations/global/"
        f"workloadIdentityPools/{project_id}.svc.id.goog/subject/ns/{namespace}/sa/{ksa}"
    )


def ensure_bucket(
    client: storage.Client, name: str, location: str, say: Callable[[str], None] = print
) -> storage.Bucket:
    """The bucket, created (uniform bucket-level access) when missing."""
    try:
        bucket = client.lookup_bucket(name)
        if bucket is not None:
            say(f"gcs: reusing bucket gs://{name}")
            return bucket
        bucket = client.bucket(name)
        bucket.iam_configuration.uniform_bucket_level_access_enabled = True
        created = client.create_bucket(bucket, location=location)
    except exceptions.GoogleAPICallError as error:
        raise readable(error, f"create bucket gs://{name}", client.project) from error
    say(f"gcs: ✓ bucket gs://{name} in {location}")
    return created


def grant_read(bucket: storage.Bucket, member: str, say: Callable[[str], None] = print) -> None:
    """Adds `member` as an object reader of the bucket (kept if already there)."""
    try:
        policy = bucket.get_iam_policy(requested_policy_version=3)
        for binding in policy.bindings:
            if binding["role"] == READER_ROLE and member in binding["members"]:
                return
        policy.bindings.append({"role": READER_ROLE, "members": {member}})
        bucket.set_iam_policy(policy)
    except exceptions.GoogleAPICallError as error:
        raise readable(error, f"grant read on gs://{bucket.name}", bucket.client.project) from error
    say(f"gcs: ✓ {member.rsplit('/subject/', 1)[-1]} may read gs://{bucket.name}")


def delete_prefix(bucket: storage.Bucket, prefix: str, say: Callable[[str], None] = print) -> int:
    """Deletes the objects under `prefix`; returns how many."""
    blobs = list(bucket.list_blobs(prefix=prefix.strip("/") + "/" if prefix else None))
    for blob in blobs:
        blob.delete()
    say(f"gcs: ✓ deleted {len(blobs)} objects under gs://{bucket.name}/{prefix}")
    return len(blobs)
