"""The model's bucket with the real google-cloud-storage client against a local double of the
Cloud Storage JSON API (tests/gcs_json_api_double.py): created once then reused, the model
uploaded, the model server's KSA given read access through Workload Identity, cleanup."""

from __future__ import annotations

import pytest
from gcs_json_api_double import PROJECT_NUMBER, GcsState, serve
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from tooling.gke.bucket import READER_ROLE, delete_prefix, ensure_bucket, grant_read, ksa_principal
from tooling.model.package import upload


@pytest.fixture
def gcs():
    state = GcsState()
    server, endpoint = serve(state)
    client = storage.Client(
        project="lab-project",
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": endpoint},
    )
    yield state, client
    server.shutdown()


def test_bucket_is_created_once_with_uniform_access_then_reused(gcs):
    state, client = gcs
    lines: list[str] = []
    ensure_bucket(client, "lab-project-resnet-serving", "us-central1", lines.append)
    ensure_bucket(client, "lab-project-resnet-serving", "us-central1", lines.append)
    created = state.buckets["lab-project-resnet-serving"]
    assert created["location"].upper() == "US-CENTRAL1"
    assert created["iamConfiguration"]["uniformBucketLevelAccess"]["enabled"] is True
    assert lines[-1] == "gcs: reusing bucket gs://lab-project-resnet-serving"


def test_model_upload_read_binding_and_cleanup(gcs, tmp_path):
    state, client = gcs
    model = tmp_path / "image_classifier"
    (model / "1" / "variables").mkdir(parents=True)
    (model / "1" / "saved_model.pb").write_bytes(b"graph")
    (model / "1" / "variables" / "variables.index").write_bytes(b"index")
    bucket = ensure_bucket(client, "models", "us-central1", print)
    names = upload(model, "gs://models/image_classifier", progress=print, client=client)
    assert (
        sorted(state.objects["models"])
        == sorted(names)
        == [
            "image_classifier/1/saved_model.pb",
            "image_classifier/1/variables/variables.index",
        ]
    )
    assert state.objects["models"]["image_classifier/1/saved_model.pb"] == b"graph"

    bucket.reload()
    member = ksa_principal(
        bucket.project_number, "lab-project", "resnet-serving", "resnet-resnet-serving"
    )
    assert member == (
        f"principal://iam.googleapis.com/projects/{PROJECT_NUMBER}/locations/global/"
        "workloadIdentityPools/lab-project.svc.id.goog/subject/ns/resnet-serving/sa/"
        "resnet-resnet-serving"
    )
    grant_read(bucket, member, print)
    grant_read(bucket, member, print)  # kept, not added twice
    bindings = state.policies["models"]["bindings"]
    assert [b["role"] for b in bindings] == [READER_ROLE]
    assert bindings[0]["members"] == [member]

    assert delete_prefix(bucket, "image_classifier", print) == 2
    assert state.objects["models"] == {}
