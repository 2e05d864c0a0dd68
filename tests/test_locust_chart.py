"""What matters in the rendered locust chart: the locustfile ConfigMap is the project's one
locustfile, workers reach the master through its Service, headless runs end (master and
workers as Jobs, named after their pods, a failed request not failing them) with a readiness
probe that works without the web UI, and every pod is restricted."""

from __future__ import annotations

import base64

import helm_cli as helm
import pytest
import yaml
from conftest import LOCUST_CHART, objects_of, one_of, render, volumes_blocking_scale_down
from pod_security import pod_spec_of, restricted_violations

from tooling import paths
from tooling.loadgen import LOCUSTFILE, LOCUSTFILE_MODULES

CASES = helm.ci_values_files(LOCUST_CHART)
IDS = [values.name.removesuffix("-values.yaml") for values in CASES]


@pytest.fixture(params=CASES, ids=IDS)
def case(request):
    overrides = yaml.safe_load(request.param.read_text())
    return overrides, render(LOCUST_CHART, request.param)


def component_of(objects, component: str) -> dict:
    """The master's or the workers' workload (Job or Deployment)."""
    (workload,) = [
        o
        for o in objects
        if o["metadata"]["labels"].get("app.kubernetes.io/component") == component
        and "template" in o.get("spec", {})
    ]
    return workload


def master_of(objects) -> dict:
    return component_of(objects, "master")


def worker_of(objects) -> dict:
    return component_of(objects, "worker")


def env_of(container: dict) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("env", [])}


def test_locustfile_configmap_is_the_projects_one_locustfile(case):
    _, objects = case
    data = one_of(objects, "ConfigMap", "-locustfile")["data"]
    expected = {path.name: path.read_text() for path in (LOCUSTFILE, *LOCUSTFILE_MODULES)}
    assert {key: text for key, text in data.items() if key != "shape.csv"} == expected
    images = one_of(objects, "ConfigMap", "-images")["binaryData"]
    assert {name: base64.b64decode(value) for name, value in images.items()} == {
        path.name: path.read_bytes() for path in sorted(paths.IMAGES_DIR.glob("*.jpg"))
    }


def test_workers_reach_the_master_through_its_service(case):
    _, objects = case
    service = one_of(objects, "Service", "-master")
    master_pod = master_of(objects)["spec"]["template"]
    assert service["spec"]["selector"].items() <= master_pod["metadata"]["labels"].items()
    worker = worker_of(objects)
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
    assert container["command"] == ["/bin/sh", "-c"]
    script, _, *arguments = container["args"]
    assert 'locust "$@" &' in script  # Locust's arguments follow the script, one per item
    workers = overrides.get("worker", {}).get("replicas", 2)
    for expected in (
        "--autostart",
        "--autoquit=0",
        "--web-port=8089",
        f"--expect-workers={workers}",
        f"--run-time={overrides['loadtest'].get('runTime', '11m')}",
        "--csv=/results/locust",
        "--html=/results/report.html",
    ):
        assert expected in arguments
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts["results"] == "/results"


def test_failed_requests_do_not_fail_a_headless_run(case):
    """Locust ends 1 on any failed request (`--exit-code-on-error`'s default): with the master's
    Job at backoffLimit 0 a single failed request made the run Failed. Its results say how it
    went; the Job fails only when the run itself broke."""
    overrides, objects = case
    worker_arguments = worker_of(objects)["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--exit-code-on-error=0" in worker_arguments
    if overrides["loadtest"].get("headless", True):
        master_arguments = master_of(objects)["spec"]["template"]["spec"]["containers"][0]["args"]
        assert "--exit-code-on-error=0" in master_arguments


def test_headless_workers_are_a_job_that_completes_when_the_master_quits(case):
    """A Deployment restarted its workers after the master's quit message; they then retried
    the gone master 60 times 5 s and ended in CrashLoopBackOff. As a Job of parallel pods (no
    completions) they end 0 with the run and the Job completes."""
    overrides, objects = case
    worker = worker_of(objects)
    if not overrides["loadtest"].get("headless", True):
        assert worker["kind"] == "Deployment"
        return
    assert objects_of(objects, "Deployment") == []
    assert worker["kind"] == "Job"
    spec = worker["spec"]
    assert spec["parallelism"] == overrides.get("worker", {}).get("replicas", 2)
    assert "completions" not in spec
    assert spec["template"]["spec"]["restartPolicy"] == "Never"
    assert spec["backoffLimit"] == 3
    evicted = {"type": "DisruptionTarget", "status": "True"}
    assert {"action": "Ignore", "onPodConditions": [evicted]} in spec["podFailurePolicy"]["rules"]


def test_every_module_of_the_locustfile_is_mounted_beside_it(case):
    _, objects = case
    modules = set(one_of(objects, "ConfigMap", "-locustfile")["data"]) - {"shape.csv"}
    for workload in (master_of(objects), worker_of(objects)):
        (volume,) = [
            v for v in workload["spec"]["template"]["spec"]["volumes"] if v["name"] == "locustfile"
        ]
        assert {item["key"] for item in volume["configMap"]["items"]} == modules


def test_settings_reach_the_locustfile_the_same_on_master_and_workers(case):
    overrides, objects = case
    master_env = env_of(master_of(objects)["spec"]["template"]["spec"]["containers"][0])
    worker_env = env_of(worker_of(objects)["spec"]["template"]["spec"]["containers"][0])
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
    worker = worker_of(objects)
    if not autoscaling.get("enabled"):
        assert hpas == []
        replicas = "parallelism" if worker["kind"] == "Job" else "replicas"
        assert worker["spec"][replicas] == overrides.get("worker", {}).get("replicas", 2)
        return
    (hpa,) = hpas
    assert hpa["spec"]["scaleTargetRef"]["name"] == worker["metadata"]["name"]
    assert hpa["spec"]["minReplicas"] == autoscaling["minReplicas"]
    assert "replicas" not in worker["spec"]
    assert worker["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"]


def test_workers_may_be_moved_by_the_cluster_autoscaler_but_not_a_running_master(case):
    _, objects = case
    worker = worker_of(objects)["spec"]["template"]
    assert volumes_blocking_scale_down(worker) == set()
    # the master's results live on its node until its run completes
    assert "results" in volumes_blocking_scale_down(master_of(objects)["spec"]["template"])


def test_every_pod_meets_pod_security_restricted(case):
    _, objects = case
    specs = [(o["metadata"]["name"], pod_spec_of(o)) for o in objects if pod_spec_of(o)]
    assert len(specs) == 3  # master, workers, the helm test pod
    for name, spec in specs:
        assert restricted_violations(spec) == [], name


def run_jobs(*set_values: str, release: str = "rs") -> dict[str, str]:
    """{component: Job name} of a headless run rendered with these --set values."""
    objects = helm.Helm.pinned().template(
        LOCUST_CHART,
        set_values=["loadtest.host=http://resnet-serving:8501", *set_values],
        release=release,
    )
    return {
        job["metadata"]["labels"]["app.kubernetes.io/component"]: job["metadata"]["name"]
        for job in objects_of(objects, "Job")
    }


def test_a_headless_runs_jobs_are_named_after_their_pods():
    """A Job's pod template is immutable, so an upgrade that changed it failed. A new pod is a
    new run with new Job names (helm deletes the old Jobs); unchanged pods keep the names, so
    an upgrade that changes nothing in them leaves the run alone."""
    jobs = run_jobs()
    assert set(jobs) == {"master", "worker"}
    assert jobs["master"].startswith("rs-locust-master-")
    assert jobs["worker"].startswith("rs-locust-worker-")
    assert jobs["master"][-8:] == jobs["worker"][-8:]  # one run: both named by both pods
    assert run_jobs() == jobs
    assert run_jobs("service.type=NodePort") == jobs  # the Service only: the same run
    for change in (
        "loadtest.runTime=5m",  # the master's pod
        "worker.resources.requests.cpu=1",  # the workers' pod only: a new run all the same
        "podAnnotations.run=again",  # how the NOTES start the same run again
        "loadtest.shape=ramp",  # the locustfile's environment
    ):
        changed = run_jobs(change)
        assert changed["master"] != jobs["master"], change
        assert changed["worker"] != jobs["worker"], change


def test_job_names_fit_a_label_value_with_the_longest_release_name():
    release = "r" * 53  # helm's limit
    for name in run_jobs(release=release).values():
        assert len(name) <= 63, name


def test_a_deleted_headless_master_ends_its_run_at_once(case):
    """The master's shell traps TERM (as PID 1 it has no default action: TERM was ignored and
    the pod waited out its grace period), saves the report and stops Locust, which quits its
    workers; tests/test_locust_lifecycle.py runs it."""
    overrides, objects = case
    pod = master_of(objects)["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] == 30
    if overrides["loadtest"].get("headless", True):
        script = pod["containers"][0]["args"][0]
        assert "trap stop TERM" in script and 'kill -TERM "$locust"' in script
