"""`resnet-serving watch`: a live terminal view of a run on any cluster, appended to its
timeline.csv (users, req/s, p50/p95 from the Locust master's web API through the API server's
service proxy; HPA, replicas, pending pods and nodes from the API; served req/s and mean
latency from TF Serving's Prometheus metrics through the pod proxy)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

from kubernetes import client

from tooling.errors import cluster_unreachable, one_line
from tooling.kube import api_client
from tooling.names import APP_NAMESPACE, SELECTOR, SERVER_NAME
from tooling.report.summary import read_timeline
from tooling.runs.locust_load import LocustWatch
from tooling.runs.server_metrics import ServerCounters, read_server_counters
from tooling.runs.timeline import TimelineRecorder
from tooling.runs.transient import TRANSIENT_ERRORS


def served_text(now: ServerCounters, earlier: ServerCounters, seconds: float) -> str:
    if not now.replicas_read:
        return ""
    rate, latency = now.since(earlier, seconds)
    mean = "-" if latency is None else f"{latency:.0f}ms"
    return f"  served {rate:.1f} req/s, mean {mean} ({now.replicas_read} replicas read)"


def status_line(row: dict) -> str:
    def value(name: str, unit: str = "") -> str:
        return "-" if row.get(name) in ("", None) else f"{row[name]}{unit}"

    # KEDA's HPA reads an External metric (the request signal per replica), not CPU
    external = row.get("hpa_external_value") not in ("", None)
    hpa = (
        f"HPA external {value('hpa_external_value')}/replica"
        if external
        else f"HPA CPU {value('hpa_cpu_percent', '%')}"
    )
    return (
        f"t={row['t_seconds']:>7}s  users {value('users')}  req/s {value('offered_rps')}  "
        f"p50 {value('p50_ms', 'ms')}  p95 {value('p95_ms', 'ms')}  "
        f"replicas {value('replicas_ready')}/{value('replicas_desired')}  "
        f"pending {value('pods_pending')}  nodes {value('nodes_ready')}  {hpa}"
    )


def watch(
    kubeconfig: Path,
    run_dir: Path,
    interval: float = 5.0,
    samples: int | None = None,
    show: Callable[[str], None] | None = None,
) -> TimelineRecorder:
    """Samples until `samples` rows (or Ctrl-C); returns the recorder (rows, events)."""
    api = api_client(kubeconfig)
    core = client.CoreV1Api(api)
    try:
        core.list_namespace(limit=1)
    except TRANSIENT_ERRORS as error:
        raise cluster_unreachable(kubeconfig, error) from error
    recorder = TimelineRecorder(
        core,
        client.AutoscalingV2Api(api),
        client.AppsV1Api(api),
        APP_NAMESPACE,
        SERVER_NAME,
        SELECTOR,
        LocustWatch(core, APP_NAMESPACE),
        run_dir,
        interval,
    )
    if recorder.timeline.is_file():  # go on with the run's clock
        previous = read_timeline(recorder.timeline)
        if previous:
            recorder.started -= previous[-1]["t_seconds"] + interval
    in_place = show is None and sys.stdout.isatty()
    show = show or (refresh_line if in_place else print)
    earlier: tuple[float, ServerCounters] | None = None
    try:
        while samples is None or len(recorder.rows) < samples:
            try:
                line = status_line(recorder.sample())
                now = (time.monotonic(), read_server_counters(core, APP_NAMESPACE, SELECTOR))
                if earlier is not None:
                    line += served_text(now[1], earlier[1], now[0] - earlier[0])
                earlier = now
                show(line)
            except TRANSIENT_ERRORS as error:  # say so and go on
                show(f"(the API server did not answer: {one_line(error, 120)}; retrying)")
            if samples is None or len(recorder.rows) < samples:
                time.sleep(interval)
    except KeyboardInterrupt:
        pass
    finally:
        recorder.write(append_events=True)
        if in_place:
            print()
    return recorder


def refresh_line(line: str) -> None:
    """Rewrites the terminal's current line."""
    print(f"\r\033[K{line}", end="", flush=True)
