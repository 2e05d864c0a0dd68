"""What matters in the rendered locust chart: the locustfile ConfigMap is the project's one
locustfile, workers reach the master through its Service, headless runs end (a Job) with a
readiness probe that works without the web UI, and every pod is restricted."""

from __future__ import annotations

import base64

import helm_cli as helm
import pytest
import yaml
from conftest import LOCUST_CHART, objects_of, one_of, render, volumes_blocking_scale_down
from pod_security import pod_spec_of, restricted_violations

from tooling import paths
from tooling.loadgen import LOAD_SHAPES_FILE, LOCUSTFILE

CASES = helm.ci_values_files(LOCUST_CHART)
IDS = [values.name.removesuffix("-values.yaml") for values in CASES]


@pytest.fixture(params=CASES, ids=IDS)
def case(request):
    overrides = yaml.safe_load(request.param.read_text())
    return overrides, render(LOCUST_CHART, request.param)


def master_of(objects) -> dict:
    (master,) = [
        o
        for o in objects
        if o["metadata"]["name"].endswith("-master") and "spec" in o and "template" in o["spec"]
    ]
    return master


def env_of(container: dict) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("env", [])}


def test_locustfile_configmap_is_the_projects_one_locustfile(case):
    _, objects = case
    data = one_of(objects, "ConfigMap", "-locustfile")["data"]
    assert data["locustfile.py"] == LOCUSTFILE.read_text()
    assert data["load_shapes.py"] == LOAD_SHAPES_FILE.read_text()
    images = one_of(objects, "ConfigMap", "-images")["binaryData"]
    assert {name: base64.b64decode(value) for name, value in images.items()} == {
        path.name: path.read_bytes() for path in sorted(paths.IMAGES_DIR.glob("*.jpg"))
    }


def test_workers_reach_the_master_through_its_service(case):
    _, objects = case
    service = one_of(objects, "Service", "-master")
    master_pod = master_of(objects)["spec"]["template"]
    assert service["spec"]["selector"].items() <= master_pod["metadata"]["labels"].items()
    worker = one_of(objects, "Deployment", "-worker")
    assert (
        not service["spec"]["selector"].items()
        <= worker["spec"]["template"]["metadata"]["labels"].items()
    ), "the master Service must not select workers"
    args = worker["spec"]["template"]["spec"]["containers"][0]["args"]
    assert f"--master-host={service['metadata']['name']}" in args
    master_port = next(p for p in service["spec"]["ports"] if p["name"] == "master")
    assert f"--master-port={master_port['port']}" in args
    container_ports = {
        p["name"]: p["containerPort"] for p in master_pod["spec"]["containers"][0]["ports"]
    }
    assert container_ports["master"] == 5557
    for port in service["spec"]["ports"]:
        assert port["targetPort"] in container_ports


def test_headless_master_is_a_job_that_ends_and_keeps_results(case):
    overrides, objects = case
    headless = overrides["loadtest"].get("headless", True)
    master = master_of(objects)
    container = master["spec"]["template"]["spec"]["containers"][0]
    if not headless:
        assert master["kind"] == "Deployment"
        assert container["readinessProbe"]["httpGet"]["port"] == "web"
        return
    assert master["kind"] == "Job"
    assert master["spec"]["backoffLimit"] == 0
    assert master["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    assert container["readinessProbe"] == {
        "tcpSocket": {"port": "master"},
        "periodSeconds": 5,
        "failureThreshold": 3,
    }
    script = container["args"][0]
    workers = overrides.get("worker", {}).get("replicas", 2)
    for expected in (
        "--autostart --autoquit=0",
        "--web-port=8089",
        f"--expect-workers={workers}",
        f"--run-time={overrides['loadtest'].get('runTime', '11m')}",
        "--csv=/results/locust",
        "--html=/results/report.html",
    ):
        assert expected in script
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts["results"] == "/results"


def test_settings_reach_the_locustfile_the_same_on_master_and_workers(case):
    overrides, objects = case
    master_env = env_of(master_of(objects)["spec"]["template"]["spec"]["containers"][0])
    worker_env = env_of(
        one_of(objects, "Deployment", "-worker")["spec"]["template"]["spec"]["containers"][0]
    )
    assert master_env.pop("LOCUST_HOST") == overrides["loadtest"]["host"]
    assert master_env == worker_env
    loadtest = overrides["loadtest"]
    assert worker_env["PREDICT_PROTOCOL"] == loadtest.get("protocol", "rest")
    shape = loadtest.get("shape", "step")
    if shape == "file":
        assert worker_env["LOAD_SHAPE"] == "file:/mnt/locust/shape/shape.csv"
        shape_csv = one_of(objects, "ConfigMap", "-locustfile")["data"]["shape.csv"]
        assert shape_csv == loadtest["shapeFile"]
    elif shape:
        assert worker_env["LOAD_SHAPE"] == shape
    else:
        assert "LOAD_SHAPE" not in worker_env
    for name, value in loadtest.get("env", {}).items():
        assert worker_env[name] == str(value)


def test_worker_autoscaling_targets_the_worker_deployment(case):
    overrides, objects = case
    hpas = objects_of(objects, "HorizontalPodAutoscaler")
    autoscaling = overrides.get("worker", {}).get("autoscaling", {})
    worker = one_of(objects, "Deployment", "-worker")
    if not autoscaling.get("enabled"):
        assert hpas == []
        assert worker["spec"]["replicas"] == overrides.get("worker", {}).get("replicas", 2)
        return
    (hpa,) = hpas
    assert hpa["spec"]["scaleTargetRef"]["name"] == worker["metadata"]["name"]
    assert hpa["spec"]["minReplicas"] == autoscaling["minReplicas"]
    assert "replicas" not in worker["spec"]
    assert worker["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"]


def test_workers_may_be_moved_by_the_cluster_autoscaler_but_not_a_running_master(case):
    _, objects = case
    worker = one_of(objects, "Deployment", "-worker")["spec"]["template"]
    assert volumes_blocking_scale_down(worker) == set()
    # the master's results live on its node until its run completes
    assert "results" in volumes_blocking_scale_down(master_of(objects)["spec"]["template"])


def test_every_pod_meets_pod_security_restricted(case):
    _, objects = case
    specs = [(o["metadata"]["name"], pod_spec_of(o)) for o in objects if pod_spec_of(o)]
    assert len(specs) == 2
    for name, spec in specs:
        assert restricted_violations(spec) == [], name
