"""What matters in the rendered resnet-serving chart, for every ci/*-values.yaml: the HPA drives
the Deployment, CPU requests exist for CPU autoscaling, the Service reaches the containers, the
model volume is wired from the init container to the path TF Serving reads, probes mean
"model loaded", and every pod meets Pod Security Standards *restricted*."""

from __future__ import annotations

import base64
import json
import math
import re

import helm_cli as helm
import pytest
import yaml
from conftest import (
    RESNET_CHART,
    deep_merge,
    objects_of,
    one_of,
    render,
    volumes_blocking_scale_down,
)
from pod_security import pod_spec_of, restricted_violations

from tooling import paths
from tooling.quantities import cpu_cores

CASES = helm.ci_values_files(RESNET_CHART)
IDS = [values.name.removesuffix("-values.yaml") for values in CASES]


def values_of(values_file) -> dict:
    """The chart's defaults merged with one ci values file (as helm merges maps)."""

    defaults = yaml.safe_load((RESNET_CHART / "values.yaml").read_text())
    return deep_merge(defaults, yaml.safe_load(values_file.read_text()) or {})


def server_deployment(objects: tuple[dict, ...]) -> dict:
    """The model server's Deployment (not the overprovisioning placeholders')."""
    return one_of(objects, "Deployment", "resnet-serving")


def server_container(deployment: dict) -> dict:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    return next(c for c in containers if c["name"] == "tensorflow-serving")


def flag(container: dict, name: str) -> str | None:
    for arg in container.get("args", []):
        if arg.startswith(f"--{name}="):
            return arg.split("=", 1)[1]
    return None


@pytest.fixture(params=CASES, ids=IDS)
def case(request):
    return request.param, render(RESNET_CHART, request.param)


def test_hpa_targets_the_deployment_with_the_configured_bounds(case):
    values_file, objects = case
    values = values_of(values_file)
    deployment = server_deployment(objects)
    hpas = objects_of(objects, "HorizontalPodAutoscaler")
    if not values["autoscaling"]["enabled"]:
        assert hpas == []
        assert deployment["spec"]["replicas"] == values["replicaCount"]
        return
    requests = values["autoscaling"]["requests"]
    if values["autoscaling"]["metric"] == "requests" and requests["keda"]["enabled"]:
        # KEDA mode: KEDA makes the HPA (tests/test_chart_request_autoscaling.py)
        assert hpas == []
        (scaler,) = objects_of(objects, "ScaledObject")
        fewest = requests["keda"]["minReplicaCount"]
        bounds = ("minReplicaCount", "maxReplicaCount")
        behavior = scaler["spec"].get("advanced", {}).get("horizontalPodAutoscalerConfig", {})
    else:
        (scaler,) = hpas
        assert scaler["apiVersion"] == "autoscaling/v2"
        fewest, bounds, behavior = None, ("minReplicas", "maxReplicas"), scaler["spec"]
    assert scaler["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": deployment["metadata"]["name"],
    }
    minimum = values["autoscaling"]["minReplicas"] if fewest is None else fewest
    assert scaler["spec"][bounds[0]] == minimum
    assert scaler["spec"][bounds[1]] == values["autoscaling"]["maxReplicas"]
    assert "replicas" not in deployment["spec"], "the HPA owns the replica count"
    if values["autoscaling"]["behavior"]:
        assert behavior["behavior"] == values["autoscaling"]["behavior"]


def test_cpu_requests_exist_for_every_resource_metric_the_hpa_uses(case):
    _, objects = case
    for hpa in objects_of(objects, "HorizontalPodAutoscaler"):
        requests = server_container(server_deployment(objects))["resources"]["requests"]
        for metric in hpa["spec"]["metrics"]:
            if metric["type"] != "Resource":
                continue  # a Pods metric (autoscaling.metric: requests) needs no request
            resource = metric["resource"]["name"]
            assert metric["resource"]["target"]["type"] == "Utilization"
            assert requests.get(resource), f"HPA scales on {resource} but no {resource} request"


def test_requests_never_exceed_limits(case):
    """The apiserver refuses a request above its limit (the rehearsal caught the lab's 4Gi
    request against the chart's default 3Gi limit)."""
    from tooling.quantities import quantity

    _, objects = case
    for obj in objects:
        spec = pod_spec_of(obj)
        for container in [
            *(spec or {}).get("initContainers", []),
            *(spec or {}).get("containers", []),
        ]:
            resources = container.get("resources") or {}
            for name, request in (resources.get("requests") or {}).items():
                limit = (resources.get("limits") or {}).get(name)
                if limit is not None:
                    assert quantity(request) <= quantity(limit), (container["name"], name)


def test_service_selects_the_pods_and_its_target_ports_are_container_ports(case):
    values_file, objects = case
    values = values_of(values_file)
    service = one_of(objects, "Service")
    pod = server_deployment(objects)["spec"]["template"]
    selector = service["spec"]["selector"]
    assert selector.items() <= pod["metadata"]["labels"].items()
    ports = {
        p["name"]: p["containerPort"]
        for p in server_container({"spec": {"template": pod}})["ports"]
    }
    assert ports == {"grpc": 8500, "http": 8501}
    by_name = {p["name"]: p for p in service["spec"]["ports"]}
    assert by_name["grpc"]["port"] == values["service"]["grpcPort"]
    assert by_name["http"]["port"] == values["service"]["httpPort"]
    for port in service["spec"]["ports"]:
        assert port["targetPort"] in ports, f"{port['targetPort']} is not a container port"
    assert service["spec"]["type"] == values["service"]["type"]


def test_init_container_fills_the_model_volume_at_the_path_the_server_reads(case):
    values_file, objects = case
    values = values_of(values_file)
    deployment = server_deployment(objects)
    pod = deployment["spec"]["template"]["spec"]
    (fetch,) = pod["initContainers"]
    server = server_container(deployment)
    fetch_mounts = {m["name"]: m for m in fetch["volumeMounts"]}
    server_mounts = {m["name"]: m for m in server["volumeMounts"]}
    assert fetch_mounts["model"]["mountPath"] == server_mounts["model"]["mountPath"]
    assert server_mounts["model"]["readOnly"] is True

    config_map = one_of(objects, "ConfigMap", "-config")
    config_dir = server_mounts["config"]["mountPath"]
    model_config_file = flag(server, "model_config_file")
    assert model_config_file.startswith(config_dir + "/")
    model_config = config_map["data"][model_config_file.removeprefix(config_dir + "/")]
    base_path = re.search(r'base_path: "([^"]+)"', model_config).group(1)
    name = re.search(r'name: "([^"]+)"', model_config).group(1)
    assert name == values["model"]["name"]
    assert base_path == f"{server_mounts['model']['mountPath']}/{name}"
    env = {e["name"]: e["value"] for e in fetch["env"]}
    assert env["MODEL_DIR"] == base_path
    assert env["MODEL_SOURCE_URI"] == values["model"]["source"]["uri"]

    volume = next(v for v in pod["volumes"] if v["name"] == "model")
    claim = values["model"]["source"]["existingClaim"]
    if claim:
        assert volume["persistentVolumeClaim"] == {"claimName": claim, "readOnly": True}
        assert fetch_mounts["model"]["readOnly"] is True
    else:
        assert "emptyDir" in volume
    script = fetch["command"][-1]
    assert script.startswith(fetch_mounts["config"]["mountPath"] + "/")
    assert (
        config_map["data"][script.rsplit("/", 1)[1]]
        == (RESNET_CHART / "files" / "fetch-model.sh").read_text()
    )
    if values["model"]["source"]["uri"].startswith("gs://"):
        assert "google-cloud-cli" in fetch["image"]


def test_server_flags_point_at_config_files_that_exist(case):
    values_file, objects = case
    values = values_of(values_file)
    server = server_container(server_deployment(objects))
    data = one_of(objects, "ConfigMap", "-config")["data"]
    assert flag(server, "port") == "8500" and flag(server, "rest_api_port") == "8501"
    monitoring = flag(server, "monitoring_config_file")
    assert (monitoring is not None) == values["monitoring"]["prometheus"]["enabled"]
    if monitoring:
        assert values["monitoring"]["prometheus"]["path"] in data[monitoring.rsplit("/", 1)[1]]
    batching = flag(server, "batching_parameters_file")
    assert (batching is not None) == values["batching"]["enabled"]
    if batching:
        assert flag(server, "enable_batching") == "true"
        text = data[batching.rsplit("/", 1)[1]]
        assert f"max_batch_size {{ value: {values['batching']['maxBatchSize']} }}" in text
        sizes = [int(s) for s in re.findall(r"allowed_batch_sizes: (\d+)", text)]
        assert sizes == values["batching"]["allowedBatchSizes"]


def test_probes_mean_model_loaded(case):
    values_file, objects = case
    values = values_of(values_file)
    server = server_container(server_deployment(objects))
    ready_path = f"/v1/models/{values['model']['name']}/metadata"
    for probe in ("startupProbe", "readinessProbe"):
        assert server[probe]["httpGet"] == {"path": ready_path, "port": "http"}
    assert server["livenessProbe"]["tcpSocket"] == {"port": "grpc"}
    startup = server["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 120, "170 MB model + warmup"
    # polled often: a new replica is Ready soon after its model is (load + warmup ≈ 8 s)
    assert startup["periodSeconds"] <= 2
    pod = server_deployment(objects)["spec"]["template"]["spec"]
    sleep = server["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert 0 < sleep < pod["terminationGracePeriodSeconds"]


def test_every_pod_meets_pod_security_restricted(case):
    _, objects = case
    pods = [(obj, pod_spec_of(obj)) for obj in objects if pod_spec_of(obj) is not None]
    assert {obj["kind"] for obj, _ in pods} == {"Deployment", "Pod"}  # server + helm test
    for obj, spec in pods:
        assert restricted_violations(spec) == [], obj["metadata"]["name"]
        for container in [*spec.get("initContainers", []), *spec["containers"]]:
            assert container["securityContext"]["readOnlyRootFilesystem"] is True


def test_the_cluster_autoscaler_may_move_a_replica_off_an_underused_node(case):
    _, objects = case
    template = server_deployment(objects)["spec"]["template"]
    assert volumes_blocking_scale_down(template) == set()


def test_pdb_and_service_account_cover_the_server_pods(case):
    values_file, objects = case
    values = values_of(values_file)
    pod = server_deployment(objects)["spec"]["template"]
    pdb = one_of(objects, "PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    assert pdb["spec"]["maxUnavailable"] == values["podDisruptionBudget"]["maxUnavailable"]
    account = one_of(objects, "ServiceAccount")
    assert pod["spec"]["serviceAccountName"] == account["metadata"]["name"]
    assert account["metadata"].get("annotations", {}) == values["serviceAccount"]["annotations"]


def test_helm_test_pod_posts_a_real_photo_to_the_service(case):
    values_file, objects = case
    values = values_of(values_file)
    request = one_of(objects, "ConfigMap", "-test-request")
    body = json.loads(request["data"]["request.json"])
    photo = (paths.IMAGES_DIR / "chelsea.jpg").read_bytes()
    assert base64.b64decode(body["instances"][0]["b64"]) == photo
    pod = one_of(objects, "Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    script = pod["spec"]["containers"][0]["command"][-1]
    service = one_of(objects, "Service")["metadata"]["name"]
    url = f"http://{service}:{values['service']['httpPort']}/v1/models/{values['model']['name']}:predict"
    assert url in script


def test_changing_the_server_config_rolls_the_pods():
    default = RESNET_CHART / "ci" / "default-values.yaml"
    plain = one_of(render(RESNET_CHART, default), "Deployment")
    batched = helm.Helm.pinned().template(RESNET_CHART, [default], ["batching.enabled=true"])
    checksum = "checksum/config"
    assert (
        plain["spec"]["template"]["metadata"]["annotations"][checksum]
        != one_of(tuple(batched), "Deployment")["spec"]["template"]["metadata"]["annotations"][
            checksum
        ]
    )


def test_overprovisioning_placeholders_hold_room_for_replicas_and_yield_to_them(case):
    values_file, objects = case
    values = values_of(values_file)
    placeholders = [
        d for d in objects_of(objects, "Deployment") if d is not server_deployment(objects)
    ]
    classes = {c["metadata"]["name"]: c for c in objects_of(objects, "PriorityClass")}
    if not values["overprovisioning"]["enabled"]:
        assert placeholders == []
        assert not any(name.endswith("-overprovisioning") for name in classes)
        return
    (placeholder,) = placeholders
    assert placeholder["spec"]["replicas"] == values["overprovisioning"]["replicas"]
    pod = placeholder["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    server = server_container(server_deployment(objects))
    assert container["resources"]["requests"] == server["resources"]["requests"]  # one replica each
    theirs = classes[pod["spec"]["priorityClassName"]]
    assert theirs["value"] < 0 and theirs["preemptionPolicy"] == "Never"
    ours = server_deployment(objects)["spec"]["template"]["spec"].get("priorityClassName")
    assert (classes[ours]["value"] if ours else 0) > theirs["value"]  # replicas preempt them
    # neither the Service nor the HPA's Deployment selector counts a placeholder
    service = one_of(objects, "Service", "resnet-serving")
    assert not service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    selector = server_deployment(objects)["spec"]["selector"]["matchLabels"]
    assert not selector.items() <= pod["metadata"]["labels"].items()


PRESETS = {
    "responsive": {"scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max"}},
    "conservative": {
        "scaleUp": {"stabilizationWindowSeconds": 60, "selectPolicy": "Min"},
        "scaleDown": {"stabilizationWindowSeconds": 600},
    },
}


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_behavior_presets_render_and_an_explicit_behavior_wins(preset, tmp_path):
    base = {"model": {"source": {"uri": "gs://bucket/resnet_101"}}}
    chosen = tmp_path / "preset.yaml"
    chosen.write_text(yaml.safe_dump(deep_merge(base, {"autoscaling": {"behaviorPreset": preset}})))
    (hpa,) = objects_of(
        tuple(helm.Helm.pinned("helm").template(RESNET_CHART, [chosen])), "HorizontalPodAutoscaler"
    )
    for direction, expected in PRESETS[preset].items():
        assert expected.items() <= hpa["spec"]["behavior"][direction].items()
    explicit = {"scaleDown": {"stabilizationWindowSeconds": 42}}
    chosen.write_text(
        yaml.safe_dump(
            deep_merge(base, {"autoscaling": {"behaviorPreset": preset, "behavior": explicit}})
        )
    )
    (hpa,) = objects_of(
        tuple(helm.Helm.pinned("helm").template(RESNET_CHART, [chosen])), "HorizontalPodAutoscaler"
    )
    assert hpa["spec"]["behavior"] == explicit


def test_the_server_runs_under_the_sigterm_wrapper_with_the_charts_flags(case):
    """TF Serving ignores SIGTERM as PID 1; the chart's sh runs it and passes SIGTERM on
    (tests/test_server_shutdown.py runs the wrapper)."""
    _, objects = case
    server = server_container(server_deployment(objects))
    assert server["command"] == ["/bin/sh", "/etc/tfserving/run-server.sh"]
    data = one_of(objects, "ConfigMap", "-config")["data"]
    assert data["run-server.sh"] == (RESNET_CHART / "files" / "run-server.sh").read_text()
    assert server["args"][0] == "--port=8500"  # flags only: the wrapper passes them on


def test_gcloud_keeps_the_images_settings_under_the_charts_config_dir(case):
    _, objects = case
    (fetch,) = server_deployment(objects)["spec"]["template"]["spec"]["initContainers"]
    env = {e["name"]: e["value"] for e in fetch["env"]}
    assert env["CLOUDSDK_CONFIG"].startswith("/tmp/")
    assert env["CLOUDSDK_CORE_DISABLE_USAGE_REPORTING"] == "true"
    assert env["CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK"] == "true"


def test_thread_pools_follow_the_cpu_limit_unless_set(case):
    values_file, objects = case
    values = values_of(values_file)
    server = server_container(server_deployment(objects))
    limit = ((values["resources"] or {}).get("limits") or {}).get("cpu")
    for name in ("intra", "inter"):
        chosen = values["server"][f"{name}OpParallelism"]
        expected = chosen or (math.ceil(cpu_cores(str(limit))) if limit else None)
        assert flag(server, f"tensorflow_{name}_op_parallelism") == (
            str(expected) if expected else None
        )


@pytest.mark.parametrize(
    ("limit", "threads"),
    [('"1"', "1"), ('"1500m"', "2"), ('"2.5"', "3"), ("2.5", "3"), ('"250m"', "1"), ("4", "4")],
)
def test_a_cpu_limit_sizes_tensorflows_thread_pools(limit, threads, tmp_path):
    values = tmp_path / "limit.yaml"
    values.write_text(
        "model: {source: {uri: gs://bucket/resnet_101}}\n"
        f"resources: {{requests: {{cpu: 250m}}, limits: {{cpu: {limit}}}}}\n"
    )
    server = server_container(
        server_deployment(tuple(helm.Helm.pinned().template(RESNET_CHART, [values])))
    )
    assert flag(server, "tensorflow_intra_op_parallelism") == threads
    assert flag(server, "tensorflow_inter_op_parallelism") == threads
    explicit = helm.Helm.pinned().template(
        RESNET_CHART, [values], ["server.intraOpParallelism=7", "server.interOpParallelism=1"]
    )
    server = server_container(server_deployment(tuple(explicit)))
    assert flag(server, "tensorflow_intra_op_parallelism") == "7"
    assert flag(server, "tensorflow_inter_op_parallelism") == "1"


def test_pods_and_placeholders_stay_on_amd64_unless_values_say_otherwise():
    """The official tensorflow/serving images are built for amd64 only."""
    default = RESNET_CHART / "ci" / "default-values.yaml"
    on = ["overprovisioning.enabled=true"]
    for deployment in objects_of(
        tuple(helm.Helm.pinned().template(RESNET_CHART, [default], on)), "Deployment"
    ):
        assert deployment["spec"]["template"]["spec"]["nodeSelector"] == {
            "kubernetes.io/arch": "amd64"
        }, deployment["metadata"]["name"]
    anywhere = helm.Helm.pinned().template(
        RESNET_CHART, [default], [*on, "nodeSelector.kubernetes\\.io/arch=null"]
    )
    for deployment in objects_of(tuple(anywhere), "Deployment"):
        assert "nodeSelector" not in deployment["spec"]["template"]["spec"]


def test_the_rehearsals_nodes_accept_the_charts_pods():
    from tooling.rehearsal.cluster import node_manifest

    labels = node_manifest("n", "pool")["metadata"]["labels"]
    pod = server_deployment(render(RESNET_CHART, RESNET_CHART / "ci" / "default-values.yaml"))
    assert pod["spec"]["template"]["spec"]["nodeSelector"].items() <= labels.items()


DIGEST = "sha256:" + "0123456789abcdef" * 4


@pytest.mark.parametrize(
    ("key", "uri", "container", "repository"),
    [
        ("image", "gs://bucket/m", "tensorflow-serving", "tensorflow/serving"),
        (
            "model.fetcher.gcsImage",
            "gs://bucket/m",
            "fetch-model",
            "gcr.io/google.com/cloudsdktool/google-cloud-cli",
        ),
        ("model.fetcher.image", "https://h/m.tar.gz", "fetch-model", "curlimages/curl"),
    ],
)
def test_an_image_pinned_by_digest_renders_repository_at_digest(key, uri, container, repository):
    objects = helm.Helm.pinned().template(
        RESNET_CHART, [], [f"model.source.uri={uri}", f"{key}.digest={DIGEST}"]
    )
    spec = server_deployment(tuple(objects))["spec"]["template"]["spec"]
    (found,) = [c for c in [*spec["initContainers"], *spec["containers"]] if c["name"] == container]
    assert found["image"] == f"{repository}@{DIGEST}"  # the tag is not part of it


def notes(*set_values: str) -> str:
    """The release notes helm prints on install (NOTES.txt), from a client-side dry run."""
    args = ["install", "rs", str(RESNET_CHART), "--dry-run=client"]
    args += ["--values", str(RESNET_CHART / "ci" / "default-values.yaml")]
    for value in set_values:
        args += ["--set", value]
    return helm.Helm.pinned().run(*args).split("NOTES:", 1)[1]


@pytest.mark.parametrize(
    ("set_values", "warned"),
    [
        ((), "autoscaling.minReplicas: 1"),
        (("autoscaling.minReplicas=2",), None),
        (("autoscaling.minReplicas=2", "podDisruptionBudget.maxUnavailable=2"), "minReplicas: 2"),
        (("podDisruptionBudget.maxUnavailable=50%",), "maxUnavailable (50%)"),
        (("autoscaling.minReplicas=2", "podDisruptionBudget.maxUnavailable=50%"), None),
        (("autoscaling.enabled=false", "replicaCount=1"), "replicaCount: 1"),
        (("podDisruptionBudget.enabled=false",), "podDisruptionBudget.enabled is false"),
    ],
    ids=["default", "two", "pdb-2-of-2", "half-of-one", "half-of-two", "fixed-one", "no-pdb"],
)
def test_notes_warn_when_a_drain_may_evict_every_replica(set_values, warned):
    text = notes(*set_values)
    if warned is None:
        assert "WARNING" not in text
    else:
        assert "WARNING" in text and warned in text and "evict every replica" in text
