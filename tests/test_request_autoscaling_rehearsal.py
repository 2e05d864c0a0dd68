"""The rehearsal scaling on TF Serving's request metrics (the chart's KEDA mode).

Fast: the Prometheus scrape configuration made from a kubeconfig (the pods found through the
API, scraped at the fleet's loopback port, never at a pod's IP), which values ask for KEDA mode
and what the rehearsal refuses before it starts anything, how run.json and the summary name the
signal. Slow (a rehearsal cluster with the real Prometheus and KEDA): a short run of
ci/requests-values.yaml under real Locust on the replica fleet scales out on the request metric
and back in, with KEDA's HPA reading an External metric whose value, checked through the API,
is above 0 under load; deleting the cluster at the run's end stops Prometheus and KEDA.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from pathlib import Path

import psutil
import pytest
import yaml
from kubernetes import client

from tooling import paths
from tooling.errors import UserError
from tooling.kube import api_client
from tooling.names import APP_NAMESPACE, SERVER_NAME
from tooling.rehearsal import components, keda, prometheus, request_metrics
from tooling.rehearsal.cluster import missing_binaries
from tooling.rehearsal.node_autoscalers import NodePool
from tooling.rehearsal.profiles import profile
from tooling.rehearsal.rehearse import RehearsalClusterSpec, rehearsal_target, request_scaling_of
from tooling.report.run_info import read_run_info, write_run_info
from tooling.report.run_report import run_summary
from tooling.report.summary import read_timeline
from tooling.runs import scaling_signal
from tooling.runs.run_spec import LoadSpec, RunSpec
from tooling.runs.story import StorySpec, run_story

CHART = paths.CHARTS_DIR / "resnet-serving"
REQUESTS_VALUES = CHART / "ci" / "requests-values.yaml"
LAB_VALUES = CHART / "ci" / "lab-values.yaml"


def kubeconfig_with(tmp_path: Path, cluster: dict, user: dict) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "kwok-x",
                "clusters": [
                    {"name": "other", "cluster": {"server": "https://10.0.0.1"}},
                    {"name": "kwok-x", "cluster": cluster},
                ],
                "contexts": [{"name": "kwok-x", "context": {"cluster": "kwok-x", "user": "me"}}],
                "users": [{"name": "me", "user": user}],
            }
        )
    )
    return path


def test_the_scrape_config_finds_pods_through_the_api_and_scrapes_them_at_the_fleet(tmp_path):
    kubeconfig = kubeconfig_with(
        tmp_path,
        {"server": "https://127.0.0.1:32766", "certificate-authority": "pki/ca.crt"},
        {"client-certificate": "/abs/admin.crt", "client-key": "/abs/admin.key"},
    )
    config = request_metrics.scrape_config(kubeconfig, "ns", 41234, 5, tmp_path / "secrets")
    assert config["global"] == {"scrape_interval": "5s", "scrape_timeout": "4s"}
    (job,) = config["scrape_configs"]
    (sd,) = job["kubernetes_sd_configs"]
    assert sd["role"] == "pod" and sd["namespaces"] == {"names": ["ns"]}
    assert sd["api_server"] == "https://127.0.0.1:32766"  # the current context's cluster
    assert sd["tls_config"] == {
        "ca_file": str(tmp_path / "pki" / "ca.crt"),  # relative to the kubeconfig
        "cert_file": "/abs/admin.crt",
        "key_file": "/abs/admin.key",
    }
    rules = job["relabel_configs"]
    keeps = {r["source_labels"][0]: r["regex"] for r in rules if r.get("action") == "keep"}
    assert keeps == {
        "__meta_kubernetes_pod_annotation_prometheus_io_scrape": "true",
        "__meta_kubernetes_pod_phase": "Running",  # ready or not, as a real Prometheus
    }
    address = [r for r in rules if r.get("target_label") == "__address__"]
    assert address == [{"target_label": "__address__", "replacement": "127.0.0.1:41234"}]
    assert not any("pod_ip" in label for r in rules for label in r.get("source_labels", []))
    path = next(r for r in rules if r.get("target_label") == "__metrics_path__")
    assert path["replacement"] == "/pods/$1/$2$3"
    targets = {r["target_label"]: r.get("source_labels") for r in rules if "target_label" in r}
    assert targets["namespace"] == ["__meta_kubernetes_namespace"]
    assert targets["pod"] == ["__meta_kubernetes_pod_name"]


def test_inline_credentials_are_written_to_files_prometheus_reads(tmp_path):
    kubeconfig = kubeconfig_with(
        tmp_path,
        {"server": "https://127.0.0.1:1", "certificate-authority-data": base64.b64encode(b"CA")},
        {"token": "s3cret", "client-key-data": base64.b64encode(b"KEY").decode()},
    )
    access = request_metrics.api_server_access(kubeconfig, tmp_path / "secrets")
    assert Path(access["tls_config"]["ca_file"]).read_bytes() == b"CA"
    key = Path(access["tls_config"]["key_file"])
    assert key.read_bytes() == b"KEY" and key.stat().st_mode & 0o077 == 0
    assert access["authorization"] == {"type": "Bearer", "credentials": "s3cret"}


def test_which_values_ask_for_keda_mode():
    files = scaling_signal.merged(
        yaml.safe_load(path.read_text()) for path in (LAB_VALUES, REQUESTS_VALUES)
    )
    scaling = scaling_signal.request_scaling(files)
    assert scaling is not None and scaling.keda and not scaling.pods_metric
    assert scaling.signal == "concurrency" and scaling.target_per_replica > 0
    lab = scaling_signal.merged([yaml.safe_load(LAB_VALUES.read_text())])
    assert scaling_signal.request_scaling(lab) is None
    assert scaling_signal.describe(lab).startswith("CPU 60 % of requests")
    back_to_cpu = scaling_signal.merged(
        [yaml.safe_load(REQUESTS_VALUES.read_text()), {"autoscaling": {"metric": None}}]
    )
    assert scaling_signal.request_scaling(back_to_cpu) is None  # a null removes the key


def run_of(tmp_path: Path, *values: dict, load: str = "locust") -> RunSpec:
    files = []
    for index, value in enumerate(values):
        files.append(tmp_path / f"values-{index}.yaml")
        files[-1].write_text(yaml.safe_dump(value))
    return RunSpec(tmp_path, LoadSpec(source=load), values_files=(REQUESTS_VALUES, *files))


def test_what_the_rehearsal_cannot_run_in_keda_mode_is_refused_before_it_starts(
    tmp_path, monkeypatch
):
    pods_metric = {"autoscaling": {"requests": {"keda": {"enabled": False}}}}
    pods_metric["autoscaling"]["requests"]["podsMetric"] = {"enabled": True}
    with pytest.raises(UserError, match="custom-metrics adapter"):
        request_scaling_of(run_of(tmp_path, pods_metric), "fast")
    monkeypatch.setenv("RESNET_SERVING_TOOLS", str(tmp_path / "empty" / "bin"))
    with pytest.raises(UserError, match=r"keda-operator.*run `make setup-rehearsal`"):
        request_scaling_of(run_of(tmp_path), "fast")
    monkeypatch.delenv("RESNET_SERVING_TOOLS")
    if not keda.missing_parts():
        with pytest.raises(UserError, match="--load locust"):
            request_scaling_of(run_of(tmp_path, load="model"), "fast")
        short = {"autoscaling": {"requests": {"window": "20s"}}}
        with pytest.raises(UserError, match=r"window 20s .* 15 s scrapes.* at least 30s"):
            request_scaling_of(run_of(tmp_path, short), "lab")
        assert request_scaling_of(run_of(tmp_path, short), "fast") is not None
    assert request_scaling_of(RunSpec(tmp_path, values_files=(LAB_VALUES,)), "fast") is None


@pytest.mark.parametrize(
    ("duration", "seconds"), [("30s", 30), ("1m30s", 90), ("500ms", 0.5), ("2h", 7200)]
)
def test_prometheus_durations_are_read_as_prometheus_reads_them(duration, seconds):
    assert request_metrics.duration_seconds(duration) == seconds


def test_a_duration_prometheus_would_refuse_is_named():
    with pytest.raises(UserError, match="'30 s' is not a Prometheus duration"):
        request_metrics.duration_seconds("30 s")


def test_rehearse_in_keda_mode_without_its_parts_is_one_line_naming_the_make_target(
    tmp_path, monkeypatch, capsys
):
    """KEDA mode never falls back to CPU: `rehearse` stops before anything starts."""
    from tooling import cli

    monkeypatch.setenv("RESNET_SERVING_TOOLS", str(tmp_path / "bin"))
    argv = ["rehearse", "--values", str(REQUESTS_VALUES), "--name", f"keda-{os.getpid()}"]
    assert cli.run([*argv, "--report", str(tmp_path / "run")]) == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and "KEDA mode" in error and "run `make setup-rehearsal`" in error
    assert not (tmp_path / "run" / "kubeconfig").exists()  # no cluster was started


def test_the_summary_names_the_signal_and_what_the_hpa_went_without(tmp_path):
    (tmp_path / "timeline.csv").write_text(
        "t_seconds,users,offered_rps,hpa_cpu_percent,replicas_desired,replicas_ready,"
        "pods_pending,nodes_ready,response_ms,p50_ms,p95_ms,failures,hpa_external_value\n"
        "0,0,0,,1,1,0,1,,,,,0\n"
        "10,8,8,,1,1,0,1,,,100,0,\n"  # the HPA without its external metric for 10 s
        "20,8,8,,2,1,0,1,,,120,0,5.2\n"
        "30,0,0,,2,2,0,1,,,,,0.1\n"
    )
    write_run_info(tmp_path, {"node_autoscaler": "x", "scaling_signal": "requests: KEDA"})
    summary = run_summary(tmp_path)
    assert ("scaling signal", "requests: KEDA") in summary.metrics()
    assert ("HPA without its external metric for", "10 s") in summary.metrics()
    write_run_info(tmp_path, {"node_autoscaler": "x"})  # a run from before the signal was named
    assert ("scaling signal", "not recorded") in run_summary(tmp_path).metrics()


MISSING = [*missing_binaries(), *keda.missing_parts()]


@pytest.mark.rehearsal
@pytest.mark.e2e
@pytest.mark.skipif(
    bool(MISSING),
    reason=f"rehearsal binaries missing ({', '.join(MISSING)}): run `make setup-rehearsal`",
)
def test_keda_scales_out_on_the_request_metric_and_back_in(tmp_path):
    run_dir = tmp_path / "run"
    cluster = RehearsalClusterSpec(
        tmp_path / "kubeconfig",
        name=f"resnet-keda-{os.getpid()}",
        profile=profile("fast"),
        pool=NodePool(max_nodes=5),  # every replica and the placeholder a node of their own
    )
    # 8 users, then 40 for 60 s: one replica (3 cores at calibration.json's CPU-seconds per
    # request) serves about 19 req/s, so at 40 users about 24 requests are inside it, three
    # times requests-values' target of 8. The 60 s at 40 users leave room for the chain of
    # lags (a 5 s scrape, the 30 s rate window, KEDA's poll, the HPA's sync): a step load
    # that reached 40 users only in its last 10 s scaled out as the load ended, too late for
    # the new replica to be Ready on a busy CI machine.
    spike = {
        "SPIKE_BASE_USERS": "8",
        "SPIKE_USERS": "40",
        "SPIKE_START": "10",
        "SPIKE_SECONDS": "60",
        "SPIKE_TOTAL_SECONDS": "80",
        "SPIKE_SPAWN_RATE": "10",
    }
    run = RunSpec(run_dir, LoadSpec("spike", variables=spike), (REQUESTS_VALUES,), down=True)
    seen: list[tuple[float, client.V2HorizontalPodAutoscaler]] = []
    stop = threading.Event()
    with rehearsal_target(cluster, run, say=print) as target:
        url = target.server_values[-1]["autoscaling"]["requests"]["keda"]["serverAddress"]
        autoscaling = client.AutoscalingV2Api(api_client(target.kubeconfig))

        def watch_keda_hpa() -> None:
            started = time.monotonic()
            while not stop.wait(1.0):
                try:
                    hpa = autoscaling.read_namespaced_horizontal_pod_autoscaler(
                        request_metrics.hpa_name(SERVER_NAME), APP_NAMESPACE
                    )
                except client.ApiException:
                    continue  # not made yet
                seen.append((time.monotonic() - started, hpa))

        watcher = threading.Thread(target=watch_keda_hpa, daemon=True)
        watcher.start()
        try:
            result = run_story(target, StorySpec(run_dir, run.values_files), say=print)
        finally:
            stop.set()
            watcher.join(timeout=10)
        # Prometheus found the pods through the API and scraped them at the fleet
        scraped = prometheus.instant_query(
            url, 'count(max_over_time(up{job="kubernetes-pods"}[15m]) == 1)'
        )
        served = prometheus.instant_query(
            url,
            f'sum(max_over_time(:tensorflow:serving:request_count{{namespace="{APP_NAMESPACE}"}}[15m]))',
        )
        charts_hpa = [
            hpa.metadata.name
            for hpa in autoscaling.list_namespaced_horizontal_pod_autoscaler(APP_NAMESPACE).items
        ]
        running = {
            component: psutil.Process(pid)
            for component in (prometheus.COMPONENT, *keda.COMPONENTS)
            if (pid := components.running_pid(cluster.name, component)) is not None
        }

    # the run's end deleted the cluster, and Prometheus and KEDA with it
    assert set(running) == {prometheus.COMPONENT, *keda.COMPONENTS}
    still = [c for c, p in running.items() if p.is_running() and p.status() != "zombie"]
    assert not still, f"still running after the cluster was deleted: {still}"
    assert charts_hpa == [request_metrics.hpa_name(SERVER_NAME)]  # KEDA's, not the chart's
    assert scraped is not None and scraped >= 2  # the first replica and at least one more
    assert served is not None and served > 0
    # KEDA's HPA scales on one External metric, AverageValue at the target per replica
    _, last = seen[-1]
    (metric,) = last.spec.metrics
    assert metric.type == "External" and metric.external.target.type == "AverageValue"
    values = [
        current.external.current.average_value
        for _, hpa in seen
        for current in (hpa.status.current_metrics or [])
        if current.type == "External" and current.external.current.average_value
    ]
    assert any(value not in ("0", "0m") for value in values), values
    # the timeline: the external metric above 0 under load, no CPU metric, out and back in
    rows = read_timeline(result.timeline)
    loaded = [row for row in rows if (row["users"] or 0) > 0]
    assert any((row.get("hpa_external_value") or 0) > 0 for row in loaded)
    assert all(row["hpa_cpu_percent"] is None for row in rows)
    summary = result.summary
    assert summary.max_replicas >= 2 and summary.time_to_first_scale_out_s is not None
    assert result.scaled_in, "replicas and nodes did not come back down"
    info = read_run_info(run_dir)
    assert "KEDA v" in info["scaling_signal"] and "request_latency_sum" in info["scaling_signal"]
    assert "scaling signal" in (run_dir / "summary.txt").read_text()
    print(
        json.dumps(
            {
                "first_scale_out_s": summary.time_to_first_scale_out_s,
                "max_replicas": summary.max_replicas,
                "back_to_minimum_s": summary.time_to_scale_in_s,
                "over_slo_s": summary.slo_violation_seconds,
            }
        )
    )
