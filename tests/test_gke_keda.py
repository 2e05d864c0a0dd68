"""KEDA mode on GKE (`up --provider gke` with values asking for it): the dry run names KEDA's chart,
version and namespace, the PodMonitoring (with `--prometheus gmp`) and the serverAddress; the
values it sets render the chart's ScaledObject with real helm; a new cluster asks for managed
collection through the real ClusterManager client (tests/gke_cluster_manager_double.py); KEDA's
chart is fetched by real helm from a chart repository (a local one here: nothing reaches
kedacore.github.io from this machine)."""

from __future__ import annotations

import functools
import http.server
import json
import subprocess
import threading
from pathlib import Path
from typing import ClassVar

import kubernetes_validate
import pytest
import yaml
from gke_cluster_manager_double import ClusterManagerDouble, serve
from google.cloud import container_v1
from helm_cli import Helm
from pod_security import restricted_violations

from tooling import cli, paths
from tooling.errors import UserError
from tooling.gke import keda_install, managed_prometheus
from tooling.gke.cluster_request import GkeClusterSpec
from tooling.gke.keda_install import KedaChart
from tooling.names import APP_NAMESPACE, SERVER_NAME
from tooling.runs import scaling_signal

GKE_FLAGS = ["--provider", "gke", "--project", "lab-project", "--location", "us-central1-a"]
REQUESTS_VALUES = paths.CHARTS_DIR / "resnet-serving" / "ci" / "requests-values.yaml"
FRONTEND = "http://frontend.resnet-serving.svc:9090"


def dry_run(tmp_path: Path, capsys, *flags: str) -> tuple[int, str, str]:
    code = cli.run(["up", *GKE_FLAGS, "--dry-run", "--report", str(tmp_path / "run"), *flags])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def json_block(printed: str, title: str) -> dict:
    """The indented JSON printed under the line that contains `title`."""
    lines = printed.splitlines()
    start = next(i for i, line in enumerate(lines) if title in line) + 1
    end = next(i for i in range(start, len(lines)) if lines[i] == "   }") + 1
    return json.loads("\n".join(line[3:] for line in lines[start:end]))


def keda_values(tmp_path: Path, address: str) -> Path:
    """The request-driven recommendation with another serverAddress."""
    values = yaml.safe_load(REQUESTS_VALUES.read_text())
    values["autoscaling"]["requests"]["keda"]["serverAddress"] = address
    path = tmp_path / "keda-values.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


def test_gmp_dry_run_prints_keda_the_pod_monitoring_and_the_server_address(tmp_path, capsys):
    code, printed, _ = dry_run(
        tmp_path, capsys, "--values", str(REQUESTS_VALUES), "--prometheus", "gmp"
    )
    assert code == 0
    version = paths.pinned_versions()["KEDA_CHART_VERSION"]
    assert version == "2.21.0"  # the chart of KEDA v2.21.0, the version the rehearsal builds
    assert (
        f"KEDA: helm chart keda {version} from https://kedacore.github.io/charts, release keda "
        "in namespace keda" in printed
    )
    cluster = container_v1.Cluster.from_json(json.dumps(json_block(printed, "1. GKE cluster")))
    assert cluster.monitoring_config.managed_prometheus_config.enabled
    monitoring = json_block(printed, "PodMonitoring resnet-serving/")
    assert monitoring["apiVersion"] == "monitoring.googleapis.com/v1"
    assert monitoring["metadata"] == {"name": SERVER_NAME, "namespace": APP_NAMESPACE}
    (endpoint,) = monitoring["spec"]["endpoints"]
    assert endpoint == {"port": "http", "path": "/monitoring/prometheus/metrics", "interval": "15s"}
    assert f"KEDA's trigger reads {FRONTEND}" in printed
    assert f"autoscaling.requests.keda.serverAddress={FRONTEND}" in printed
    assert "--role=roles/monitoring.viewer --member=principal://" in printed
    assert "/subject/ns/resnet-serving/sa/gmp-frontend" in printed
    numbers = [line.split(".")[0] for line in printed.splitlines() if line[:1].isdigit()]
    assert numbers == [str(n) for n in range(1, len(numbers) + 1)]


def test_the_pod_monitoring_selects_exactly_the_servers_pods_on_the_rest_port(tmp_path):
    """Rendered by real helm with the values `up` sets: the PodMonitoring's selector is the
    Deployment's, its pods carry it, the port it names is 8501 where the metrics are, and the
    ScaledObject asks the frontend."""
    values = [
        yaml.safe_load(REQUESTS_VALUES.read_text()),
        {"autoscaling": {"requests": {"keda": {"serverAddress": FRONTEND}}}},
    ]
    objects = scaling_signal.rendered_server_chart(values, APP_NAMESPACE)
    selector, path = managed_prometheus.release_scrape(objects)
    monitoring = managed_prometheus.pod_monitoring(selector, path)
    (deployment,) = [
        o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == SERVER_NAME
    ]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    matched = monitoring["spec"]["selector"]["matchLabels"]
    assert matched == deployment["spec"]["selector"]["matchLabels"]
    assert matched.items() <= labels.items()
    assert path == "/monitoring/prometheus/metrics"
    assert managed_prometheus.port_is_rest(objects)
    trigger = scaling_signal.prometheus_trigger(objects)
    assert trigger["serverAddress"] == FRONTEND
    assert 'namespace="resnet-serving"' in trigger["query"]  # GMP sets namespace and pod


def test_the_frontend_is_valid_and_runs_under_restricted_pod_security():
    objects = managed_prometheus.frontend_objects("lab-project")
    for manifest in objects:
        kubernetes_validate.validate(manifest, kubernetes_validate.latest_version(), strict=True)
    (deployment,) = [o for o in objects if o["kind"] == "Deployment"]
    assert restricted_violations(deployment["spec"]["template"]["spec"]) == []
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert "--query.project-id=lab-project" in container["args"]
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == "gmp-frontend"
    (service,) = [o for o in objects if o["kind"] == "Service"]
    assert service["metadata"]["name"] == "frontend"  # the serverAddress' host
    assert service["spec"]["ports"][0]["port"] == 9090


def test_an_in_cluster_prometheus_url_installs_keda_only(tmp_path, capsys):
    url = "http://prometheus-server.monitoring.svc:80"
    code, printed, _ = dry_run(
        tmp_path, capsys, "--values", str(REQUESTS_VALUES), "--prometheus", url
    )
    assert code == 0
    assert "KEDA: helm chart keda 2.21.0" in printed
    assert "PodMonitoring" not in printed and "monitoringConfig" not in printed
    assert f"autoscaling.requests.keda.serverAddress={url}" in printed


def test_without_the_flag_the_values_serveraddress_is_kept(tmp_path, capsys):
    code, printed, _ = dry_run(tmp_path, capsys, "--values", str(REQUESTS_VALUES))
    assert code == 0
    assert "serverAddress=http://prometheus.monitoring.svc:9090" in printed
    assert "KEDA: helm chart keda" in printed


def test_cpu_values_install_no_keda(tmp_path, capsys):
    code, printed, _ = dry_run(tmp_path, capsys)
    assert code == 0
    assert "KEDA" not in printed and "serverAddress" not in printed


def test_keda_mode_with_no_prometheus_is_one_line_saying_what_to_pass(tmp_path, capsys):
    code, printed, err = dry_run(tmp_path, capsys, "--values", str(keda_values(tmp_path, "")))
    assert code == 2 and not printed
    message = err.strip()
    assert "\n" not in message
    assert "--prometheus gmp" in message and "--prometheus http://" in message


@pytest.mark.parametrize(
    ("flags", "said"),
    [
        (["--prometheus", "gmp"], "--prometheus gmp is for KEDA mode"),
        (
            ["--values", str(REQUESTS_VALUES), "--prometheus", "prometheus:9090"],
            "use gmp or Prometheus' URL",
        ),
    ],
)
def test_a_prometheus_that_cannot_work_is_refused_in_one_line(tmp_path, capsys, flags, said):
    code, printed, err = dry_run(tmp_path, capsys, *flags)
    assert code == 2 and not printed
    assert said in err and "\n" not in err.strip()


def test_prometheus_elsewhere_than_gke_is_refused(tmp_path, capsys):
    args = ["up", "--provider", "kind", "--prometheus", "gmp", "--report", str(tmp_path / "r")]
    assert cli.run(args) == 2
    assert "--prometheus is for --provider gke" in capsys.readouterr().err


def test_a_gmp_cluster_asks_for_managed_collection_and_a_reused_one_must_have_it(
    tmp_path, monkeypatch
):
    from tooling.gke.clusters import LOCAL_ENDPOINT_VARIABLE
    from tooling.providers.gke import GkeProvider, GkeProviderSpec, with_prometheus

    double = ClusterManagerDouble(polls_until_done=1)
    server, _, address = serve(double)
    monkeypatch.setenv(LOCAL_ENDPOINT_VARIABLE, address)
    lines: list[str] = []
    kubeconfig = tmp_path / "kubeconfig"
    try:
        plain = GkeProviderSpec(GkeClusterSpec("lab-project", "us-central1-a"), kubeconfig)
        gmp = with_prometheus(plain, "gmp")
        GkeProvider().create(gmp, lines.append)
        sent = dict(double.requests)["CreateCluster"].cluster
        assert sent.monitoring_config.managed_prometheus_config.enabled
        assert kubeconfig.is_file()

        other = GkeClusterSpec("lab-project", "us-central1-a", name="without-collection")
        GkeProvider().create(GkeProviderSpec(other, kubeconfig), lines.append)
        sent = dict(double.requests)["CreateCluster"].cluster
        assert not sent.monitoring_config.managed_prometheus_config.enabled
        with pytest.raises(UserError) as raised:
            GkeProvider().create(with_prometheus(GkeProviderSpec(other, kubeconfig), "gmp"), print)
    finally:
        server.stop(grace=None)
    message = str(raised.value)
    assert "gcloud container clusters update without-collection" in message
    assert "--enable-managed-prometheus" in message and "\n" not in message


@pytest.fixture
def chart_repository(tmp_path):
    """A chart repository over HTTP on loopback serving a chart named keda at the pinned
    version (a stand-in chart; the real one is at kedacore.github.io, out of reach here)."""
    helm = Helm.pinned()
    chart = tmp_path / "keda"
    (chart / "templates").mkdir(parents=True)
    version = keda_install.chart_version()
    (chart / "Chart.yaml").write_text(
        f"apiVersion: v2\nname: keda\nversion: {version}\nappVersion: {version}\n"
    )
    (chart / "templates" / "configmap.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: stand-in\n"
    )
    served = tmp_path / "repo"
    served.mkdir()
    helm.run("package", str(chart), "--destination", str(served))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    url = f"http://127.0.0.1:{httpd.server_address[1]}"
    helm.run("repo", "index", str(served), "--url", url)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield url
    httpd.shutdown()


def test_helm_fetches_the_pinned_chart_from_the_repository(chart_repository):
    metadata = keda_install.fetch(KedaChart(repo=chart_repository))
    assert (metadata["name"], metadata["version"]) == ("keda", "2.21.0")


def test_a_version_the_repository_lacks_names_the_pin(chart_repository):
    with pytest.raises(UserError) as raised:
        keda_install.fetch(KedaChart(repo=chart_repository, version="9.9.9"))
    message = str(raised.value)
    assert "keda chart 9.9.9" in message and "KEDA_CHART_VERSION" in message


def test_the_stand_in_chart_is_not_committed():
    """The chart repository above is made in a temporary directory; no third-party chart is
    in the tree."""
    tracked = subprocess.run(
        ["git", "ls-files", "*keda*"], cwd=paths.REPO_ROOT, capture_output=True, text=True
    ).stdout.split()
    assert not [name for name in tracked if name.endswith((".tgz", "Chart.yaml"))]


def test_keda_from_the_repository_and_the_frontend_go_into_a_cluster(
    shared_cluster, chart_repository
):
    """On the rehearsal's API server: the chart installed (and again: an upgrade) into namespace
    keda by real helm from the repository; the frontend applied server-side (twice: the same
    objects); a PodMonitoring where GMP's CRD is missing is one line saying what to turn on."""
    from conftest import namespace_in
    from kubernetes import client

    from tooling import releases

    kubeconfig, api = shared_cluster
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    lines: list[str] = []
    chart = KedaChart(repo=chart_repository)
    try:
        keda_install.install(kubeconfig, chart, lines.append)
        keda_install.install(kubeconfig, chart, lines.append)
        assert core.read_namespaced_config_map("stand-in", "keda").metadata.name == "stand-in"
        assert lines[-1] == "gke: ✓ KEDA 2.21.0 installed (namespace keda)"
    finally:
        releases.uninstall(kubeconfig, "keda", "keda", wait=True)
        core.delete_namespace("keda")
    with namespace_in(api, "gmp-frontend") as namespace:
        objects = managed_prometheus.frontend_objects("lab-project", namespace)
        managed_prometheus.apply(kubeconfig, objects)
        managed_prometheus.apply(kubeconfig, objects)
        deployment = apps.read_namespaced_deployment("frontend", namespace)
        assert deployment.spec.template.spec.service_account_name == "gmp-frontend"
        assert deployment.metadata.generation == 1  # the second apply changed nothing
        assert core.read_namespaced_service("frontend", namespace).spec.cluster_ip == "None"
        monitoring = managed_prometheus.pod_monitoring({"app": "x"}, "/metrics")
        monitoring["metadata"]["namespace"] = namespace
        with pytest.raises(UserError) as raised:
            managed_prometheus.apply(kubeconfig, [monitoring])
    message = str(raised.value)
    assert "no PodMonitoring (monitoring.googleapis.com/v1)" in message
    assert "--enable-managed-prometheus" in message and "\n" not in message


class ResourceManagerDouble(http.server.BaseHTTPRequestHandler):
    """Cloud Resource Manager v1's projects.get, getIamPolicy and setIamPolicy for one project,
    with etags (a stale one is 409 ABORTED, as Google answers) and failures to inject."""

    policy: ClassVar[dict] = {}
    calls: ClassVar[list[str]] = []
    fail: ClassVar[dict[str, tuple[int, str]]] = {}
    race: ClassVar[int] = 0  # setIamPolicy calls to answer 409 (someone else changed the policy)

    def log_message(self, *args: object) -> None:
        pass

    def reply(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def handle_call(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        name = self.path.rsplit(":", 1)[-1] if ":" in self.path else method
        self.calls.append(name)
        if name in self.fail:
            status, text = self.fail.pop(name)
            return self.reply(status, {"error": {"code": status, "message": text}})
        if self.path == "/v1/projects/lab-project" and method == "GET":
            return self.reply(200, {"projectId": "lab-project", "projectNumber": "123456789012"})
        if name == "getIamPolicy":
            assert body == {"options": {"requestedPolicyVersion": 3}}
            return self.reply(200, json.loads(json.dumps(self.policy)))
        if name == "setIamPolicy":
            sent = body["policy"]
            if type(self).race > 0 or sent.get("etag") != self.policy["etag"]:
                type(self).race -= 1
                self.policy["etag"] = self.policy["etag"] + "x"  # changed by someone else
                return self.reply(409, {"error": {"code": 409, "status": "ABORTED"}})
            type(self).policy = {**sent, "etag": sent["etag"] + "1"}
            return self.reply(200, self.policy)
        return self.reply(404, {"error": {"code": 404}})

    def do_GET(self) -> None:
        self.handle_call("GET")

    def do_POST(self) -> None:
        self.handle_call("POST")


@pytest.fixture
def resource_manager(monkeypatch):
    from tooling.gke.project_iam import LOCAL_ENDPOINT_VARIABLE

    ResourceManagerDouble.policy = {
        "version": 1,
        "etag": "BwY",
        "bindings": [
            {"role": "roles/owner", "members": ["user:me@example.com"]},
            {
                "role": "roles/monitoring.viewer",
                "members": ["user:temp@example.com"],
                "condition": {"title": "until", "expression": "request.time < timestamp('x')"},
            },
        ],
    }
    ResourceManagerDouble.calls = []
    ResourceManagerDouble.fail = {}
    ResourceManagerDouble.race = 0
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), ResourceManagerDouble)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    monkeypatch.setenv(LOCAL_ENDPOINT_VARIABLE, f"http://127.0.0.1:{httpd.server_address[1]}")
    yield ResourceManagerDouble
    httpd.shutdown()


FRONTEND_MEMBER = (
    "principal://iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/"
    "lab-project.svc.id.goog/subject/ns/resnet-serving/sa/gmp-frontend"
)


def test_the_frontend_gets_monitoring_viewer_once_other_bindings_kept(resource_manager):
    from tooling.gke.request_autoscaling import grant_frontend

    lines: list[str] = []
    grant_frontend("lab-project", lines.append)
    grant_frontend("lab-project", lines.append)  # again: nothing to do
    bindings = resource_manager.policy["bindings"]
    assert {"role": "roles/monitoring.viewer", "members": [FRONTEND_MEMBER]} in bindings
    assert {"role": "roles/owner", "members": ["user:me@example.com"]} in bindings
    conditional = [b for b in bindings if "condition" in b]
    assert conditional[0]["members"] == ["user:temp@example.com"]  # not widened
    assert resource_manager.policy["version"] == 3
    assert resource_manager.calls.count("setIamPolicy") == 1
    assert lines[0].startswith("gke: ✓ roles/monitoring.viewer on project lab-project → principal")
    assert lines[1].endswith("(already)")


def test_a_concurrent_policy_change_is_read_again(resource_manager):
    from tooling.gke.request_autoscaling import grant_frontend

    resource_manager.race = 1
    grant_frontend("lab-project", print)
    assert resource_manager.calls.count("setIamPolicy") == 2
    assert any(FRONTEND_MEMBER in b["members"] for b in resource_manager.policy["bindings"])


@pytest.mark.parametrize(
    ("status", "text", "advice"),
    [
        (403, "The caller does not have permission", "roles/resourcemanager.projectIamAdmin"),
        (
            403,
            "Cloud Resource Manager API has not been used in project 123 before (SERVICE_DISABLED)",
            "gcloud services enable cloudresourcemanager.googleapis.com --project lab-project",
        ),
    ],
)
def test_a_refused_grant_is_one_line_with_the_command_to_run_instead(
    resource_manager, status, text, advice
):
    from tooling.gke.request_autoscaling import grant_frontend

    resource_manager.fail["setIamPolicy"] = (status, text)
    with pytest.raises(UserError) as raised:
        grant_frontend("lab-project", print)
    message = str(raised.value)
    assert advice in message and "\n" not in message
    assert "gcloud projects add-iam-policy-binding lab-project --role=roles/monitoring.viewer" in (
        message
    )
