"""GKE cluster bootstrap with the real google-cloud-container client against a local gRPC
double of the ClusterManager service (tests/gke_cluster_manager_double.py)."""

from __future__ import annotations

import grpc
import pytest
import yaml
from gke_cluster_manager_double import ClusterManagerDouble, serve
from google.cloud import container_v1
from kubernetes import config as kube_config_loader

from tooling.errors import UserError
from tooling.gke.cluster_request import GkeClusterSpec
from tooling.gke.clusters import GkeClusters
from tooling.gke.kubeconfig import AUTH_PLUGIN, write_credentials

SPEC = GkeClusterSpec(project="lab-project", location="us-central1-a", name="resnet-serving")


@pytest.fixture
def double():
    return ClusterManagerDouble(polls_until_done=3)


@pytest.fixture
def gke(double):
    server, client, _ = serve(double)
    lines: list[str] = []
    yield GkeClusters(client, say=lines.append, poll_seconds=0), lines
    server.stop(grace=None)


def test_create_asks_for_an_autoscaled_node_pool_with_workload_identity(gke, double):
    clusters, lines = gke
    created = clusters.create(SPEC)
    assert created.status == container_v1.Cluster.Status.RUNNING
    assert double.methods() == ["GetCluster", "CreateCluster", *["GetOperation"] * 3, "GetCluster"]
    request = dict(double.requests)["CreateCluster"]
    assert request.parent == "projects/lab-project/locations/us-central1-a"
    (pool,) = request.cluster.node_pools
    assert pool.config.machine_type == "e2-standard-4"
    assert (pool.autoscaling.enabled, pool.autoscaling.min_node_count) == (True, 1)
    assert pool.autoscaling.max_node_count == 3
    assert pool.initial_node_count == 1
    mode = pool.config.workload_metadata_config.mode
    assert mode == container_v1.WorkloadMetadataConfig.Mode.GKE_METADATA
    assert request.cluster.workload_identity_config.workload_pool == "lab-project.svc.id.goog"
    profile = request.cluster.autoscaling.autoscaling_profile
    assert profile == container_v1.ClusterAutoscaling.AutoscalingProfile.BALANCED  # GKE's default
    # each poll of the long-running operation shows progress
    assert sum("create cluster resnet-serving: running" in line for line in lines) == 2
    assert any("done" in line for line in lines)


def test_options_reach_the_request(gke, double):
    clusters, _ = gke
    spec = GkeClusterSpec(
        project="p1",
        location="europe-west4",
        name="big",
        machine_type="n2-standard-8",
        min_nodes=2,
        max_nodes=6,
    )
    clusters.create(spec)
    request = dict(double.requests)["CreateCluster"]
    (pool,) = request.cluster.node_pools
    assert pool.config.machine_type == "n2-standard-8"
    assert (pool.autoscaling.min_node_count, pool.autoscaling.max_node_count) == (2, 6)
    assert spec.regional and not SPEC.regional


def test_an_existing_cluster_is_reused_not_an_error(gke, double):
    clusters, lines = gke
    first = clusters.create(SPEC)
    double.requests.clear()
    again = clusters.create(SPEC)
    assert double.methods() == ["GetCluster"]
    assert again.endpoint == first.endpoint
    assert any("reusing cluster resnet-serving" in line for line in lines)


@pytest.mark.parametrize(
    ("code", "message", "advice"),
    [
        (
            grpc.StatusCode.PERMISSION_DENIED,
            "Kubernetes Engine API has not been used in project 123 before or it is disabled.",
            "gcloud services enable container.googleapis.com --project lab-project",
        ),
        (
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            'Insufficient regional quota to satisfy request: resource "CPUS": request requires '
            "'12.0' and is short '4.0'.",
            "ask for more quota",
        ),
        (
            grpc.StatusCode.PERMISSION_DENIED,
            "Required 'container.clusters.create' permission for 'projects/lab-project'.",
            "roles/container.admin",
        ),
        (
            grpc.StatusCode.UNAUTHENTICATED,
            "Request had invalid authentication credentials.",
            "gcloud auth application-default login",
        ),
    ],
)
def test_cloud_errors_become_one_sentence_with_what_to_do(gke, double, code, message, advice):
    clusters, _ = gke
    double.fail("CreateCluster", code, message)
    with pytest.raises(UserError) as raised:
        clusters.create(SPEC)
    text = str(raised.value)
    assert advice in text and "\n" not in text
    assert text.startswith("could not create cluster resnet-serving")


def test_a_failed_operation_is_reported(gke, double):
    clusters, _ = gke
    double.operation_error = "Insufficient quota to satisfy the request: CPUS."
    with pytest.raises(UserError, match="quota"):
        clusters.create(SPEC)


def test_delete_waits_for_the_operation_and_confirms(gke, double):
    clusters, lines = gke
    clusters.create(SPEC)
    assert clusters.delete(SPEC) is True
    assert double.methods()[-4:] == ["DeleteCluster", *["GetOperation"] * 3]
    assert clusters.find(SPEC) is None
    assert "gke: ✓ cluster resnet-serving deleted" in lines
    assert clusters.delete(SPEC) is False  # nothing left: says so, no error


def test_credentials_use_the_gke_auth_plugin_and_keep_other_entries(gke, tmp_path):
    clusters, _ = gke
    cluster = clusters.create(SPEC)
    path = tmp_path / "kubeconfig"
    other = {"name": "kind-laptop", "cluster": {"server": "https://127.0.0.1:6443"}}
    path.write_text(yaml.safe_dump({"clusters": [other], "current-context": "kind-laptop"}))
    write_credentials(path, SPEC, cluster)
    write_credentials(path, SPEC, cluster)  # again: replaced, not duplicated
    written = yaml.safe_load(path.read_text())
    assert [c["name"] for c in written["clusters"]] == ["kind-laptop", SPEC.kube_context]
    contexts, current = kube_config_loader.list_kube_config_contexts(str(path))
    assert current["name"] == "gke_lab-project_us-central1-a_resnet-serving"
    assert len(contexts) == 1
    user = written["users"][0]["user"]["exec"]
    assert user["command"] == AUTH_PLUGIN and user["provideClusterInfo"] is True
    server = written["clusters"][1]["cluster"]
    assert server["server"] == "https://203.0.113.10"
    assert server["certificate-authority-data"] == "Q0EgZGF0YQ=="
    assert path.stat().st_mode & 0o077 == 0


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"name": "Bad_Name"}, "cluster name 'Bad_Name'"),
        ({"min_nodes": 4, "max_nodes": 3}, "--min-nodes 4 / --max-nodes 3"),
        ({"project": ""}, "--project is required"),
    ],
)
def test_bad_cluster_options_say_which(fields, named):
    values = {"project": "p", "location": "us-central1-a", **fields}
    with pytest.raises(UserError, match=named.replace("(", r"\(")):
        GkeClusterSpec(**values)


def test_cli_creates_reuses_and_deletes_through_the_client(double, tmp_path, monkeypatch, capsys):
    from tooling import cli
    from tooling.gke.clusters import LOCAL_ENDPOINT_VARIABLE

    server, _, address = serve(double)
    monkeypatch.setenv(LOCAL_ENDPOINT_VARIABLE, address)
    kubeconfig = tmp_path / "kubeconfig"
    flags = ["--provider", "gke", "--project", "lab-project", "--location", "us-central1-a"]
    try:
        assert cli.run(["cluster", "create", *flags, "--kubeconfig", str(kubeconfig)]) == 0
        assert cli.run(["cluster", "create", *flags, "--kubeconfig", str(kubeconfig)]) == 0
        assert double.methods().count("CreateCluster") == 1
        assert "reusing cluster resnet-serving" in capsys.readouterr().err
        kubeconfig.unlink()
        assert cli.run(["cluster", "credentials", *flags, "--kubeconfig", str(kubeconfig)]) == 0
        assert yaml.safe_load(kubeconfig.read_text())["current-context"] == SPEC.kube_context
        assert cli.run(["cluster", "delete", *flags]) == 0
        assert cli.run(["cluster", "credentials", *flags, "--kubeconfig", str(kubeconfig)]) == 2
        assert "create it with `resnet-serving cluster create --provider gke" in (
            capsys.readouterr().err
        )
        double.fail("CreateCluster", grpc.StatusCode.PERMISSION_DENIED, "it is disabled")
        assert cli.run(["cluster", "create", *flags, "--kubeconfig", str(kubeconfig)]) == 2
        assert "gcloud services enable container.googleapis.com" in capsys.readouterr().err
    finally:
        server.stop(grace=None)


GKE_FLAGS = ["--provider", "gke", "--project", "lab-project", "--location", "us-central1-a"]


def test_dry_run_prints_exactly_the_cluster_that_create_sends(
    double, tmp_path, monkeypatch, capsys
):
    from tooling import cli
    from tooling.gke.clusters import LOCAL_ENDPOINT_VARIABLE

    flags = [*GKE_FLAGS, "--max-nodes", "5", "--machine-type", "e2-standard-8"]
    flags += ["--autoscaling-profile", "optimize-utilization"]
    assert cli.run(["up", *flags, "--dry-run", "--report", str(tmp_path / "run")]) == 0
    printed = capsys.readouterr().out
    assert '"autoscalingProfile": "OPTIMIZE_UTILIZATION"' in printed
    block = printed.split("\n2. ")[0].split(":\n", 1)[1]
    planned = container_v1.Cluster.from_json(block)
    assert "roles/storage.objectViewer → principal://iam.googleapis.com/projects/" in printed
    assert "/subject/ns/resnet-serving/sa/resnet-resnet-serving" in printed
    assert "gs://lab-project-resnet-serving/image_classifier" in printed
    assert not double.requests  # a dry run calls nothing

    server, _, address = serve(double)
    monkeypatch.setenv(LOCAL_ENDPOINT_VARIABLE, address)
    try:
        kubeconfig = str(tmp_path / "kubeconfig")
        assert cli.run(["cluster", "create", *flags, "--kubeconfig", kubeconfig]) == 0
    finally:
        server.stop(grace=None)
    sent = dict(double.requests)["CreateCluster"].cluster
    assert sent == planned
    assert sent.node_pools[0].autoscaling.max_node_count == 5
    profile = sent.autoscaling.autoscaling_profile
    assert profile == container_v1.ClusterAutoscaling.AutoscalingProfile.OPTIMIZE_UTILIZATION


def test_an_unknown_autoscaling_profile_is_refused_naming_the_choices():
    with pytest.raises(UserError, match="balanced, optimize-utilization"):
        GkeClusterSpec(project="p", location="us-central1-a", autoscaling_profile="eager")


def test_down_asks_first_and_deletes_with_yes(double, tmp_path, monkeypatch, capsys):
    from tooling import cli
    from tooling.gke.clusters import LOCAL_ENDPOINT_VARIABLE

    server, _, address = serve(double)
    monkeypatch.setenv(LOCAL_ENDPOINT_VARIABLE, address)
    kubeconfig = ["--kubeconfig", str(tmp_path / "missing-kubeconfig")]
    try:
        assert cli.run(["cluster", "create", *GKE_FLAGS, *kubeconfig]) == 0
        (tmp_path / "missing-kubeconfig").unlink()
        # no terminal to ask on, no --yes: nothing is deleted
        assert cli.run(["down", *GKE_FLAGS, "--model-uri", "gs://b/m", *kubeconfig]) == 1
        assert "nothing is deleted without --yes" in capsys.readouterr().err
        assert SPEC.path in double.clusters
        assert cli.run(["down", *GKE_FLAGS, "--model-uri", "gs://b/m", "--yes", *kubeconfig]) == 0
        assert SPEC.path not in double.clusters
    finally:
        server.stop(grace=None)


def test_up_on_kind_needs_a_model_uri_before_creating_anything(tmp_path, capsys):
    from tooling import cli

    assert cli.run(["up", "--provider", "kind", "--report", str(tmp_path / "run")]) == 2
    assert "give --model-uri https://" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
