"""Real load on a real cluster: the Locust chart run headless, watched through its web API.

The chart's master starts the shape itself (`--autostart`); every few seconds its
`/stats/requests` is read through the API server's service proxy (no port-forward, no
Prometheus). The load has ended when the master, once running, reports a stopped state or
quits, when its Job fails, or when the run time plus a margin has passed. A run's outcome is
what Locust measured (failed requests end the master 0); a failed Job means the run broke.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import urllib3
from kubernetes import client
from kubernetes.client.rest import ApiException

from tooling import releases
from tooling.loadgen.live_stats import LiveStats, read_through_service_proxy, without_held_rate
from tooling.loadgen.run import seconds_of
from tooling.names import LOAD_RELEASE, MASTER_NAME, MASTER_SELECTOR, REST_PORT
from tooling.runs.target import StoryContext
from tooling.runs.timeline import LoadSample
from tooling.runs.transient import TRANSIENT_ERRORS

START_MARGIN_SECONDS = 300  # image pulls and workers connecting, before the shape starts


@dataclass(frozen=True)
class LocustSettings:
    """The Locust chart's run: shape (and its environment, e.g. STEP_SECONDS), workers, time."""

    shape: str = "step"  # step, ramp, spike or file
    environment: dict[str, str] = field(default_factory=dict)
    shape_file: str = ""  # the CSV itself, for shape file
    workers: int = 2
    run_time: str = "11m"
    image: str = ""  # repository:tag; empty keeps the chart's locustio/locust
    # Values maps applied before the run's own (a cluster's ci values file: local images)
    chart_values: tuple[dict, ...] = ()

    def values(self, server_host: str) -> dict:
        values: dict = {
            "loadtest": {
                "host": server_host,
                "headless": True,
                "shape": self.shape,
                "runTime": self.run_time,
                "env": dict(self.environment),
                "shapeFile": self.shape_file,
            },
            "worker": {"replicas": self.workers},
        }
        if self.image:
            repository, _, tag = self.image.rpartition(":")
            values["image"] = {"repository": repository, "tag": tag}
        return values


def sample_of(stats: LiveStats | None) -> LoadSample:
    """The timeline's load columns from a master's live stats (no users unless running)."""
    if stats is None or not stats.running:
        return LoadSample(failures=None if stats is None else stats.failures)
    return LoadSample(
        users=stats.users,
        offered_rps=stats.rps,
        response_ms=stats.p50_ms,
        p50_ms=stats.p50_ms,
        p95_ms=stats.p95_ms,
        failures=stats.failures,
    )


@dataclass
class LocustWatch:
    """Reads the master's live stats when sampled; no Locust release means no load known."""

    core: client.CoreV1Api
    namespace: str
    finished: threading.Event = field(default_factory=threading.Event)
    previous: LiveStats | None = None

    def latest(self) -> LoadSample:
        try:
            stats = read_through_service_proxy(self.core, self.namespace, MASTER_NAME)
        except (ApiException, urllib3.exceptions.HTTPError):
            return LoadSample()
        self.previous = without_held_rate(stats, self.previous)
        return sample_of(self.previous)

    def run(self, stop: threading.Event) -> None:
        stop.wait()


@dataclass
class LocustLoad:
    """A LoadSource that watches the chart's master."""

    core: client.CoreV1Api
    batch: client.BatchV1Api
    namespace: str
    run_seconds: float
    period: float = 5.0
    say: Callable[[str], None] = print
    current: LiveStats | None = None
    seen_running: bool = False
    started: float = field(default_factory=time.monotonic)
    finished: threading.Event = field(default_factory=threading.Event)

    def latest(self) -> LoadSample:
        return sample_of(self.current)

    def master_failed(self) -> bool:
        """The master's Job (named with a hash of its pod: found by its labels) failed."""
        jobs = self.batch.list_namespaced_job(self.namespace, label_selector=MASTER_SELECTOR)
        return any(job.status.failed for job in jobs.items if not job.metadata.deletion_timestamp)

    def poll(self) -> None:
        if self.master_failed():
            self.say("load: the Locust run broke (its master's Job failed); see its pod's log")
            self.finished.set()
            return
        try:
            stats = read_through_service_proxy(self.core, self.namespace, MASTER_NAME)
        except (ApiException, urllib3.exceptions.HTTPError):  # not up yet, or quit after the run
            if self.seen_running:
                self.current = None
                self.finished.set()
            return
        self.current = without_held_rate(stats, self.current)
        if stats.running:
            self.seen_running = True
        elif self.seen_running:
            self.finished.set()

    @property
    def max_seconds(self) -> float:
        return self.run_seconds + START_MARGIN_SECONDS

    def run(self, stop: threading.Event) -> None:
        deadline = self.started + self.max_seconds
        while not stop.is_set() and not self.finished.is_set():
            with contextlib.suppress(*TRANSIENT_ERRORS):  # the next period retries
                self.poll()
            if time.monotonic() > deadline:
                self.say("load: the Locust run went past its run time; treating it as ended")
                self.finished.set()
            stop.wait(self.period)


def start_locust_load(
    context: StoryContext, settings: LocustSettings, say: Callable[[str], None] = print
) -> LocustLoad:
    """Installs the Locust chart (a fresh Job: an earlier run's release is replaced)."""
    releases.uninstall(context.kubeconfig, LOAD_RELEASE, context.namespace, wait=True)
    host = f"http://{context.server_name}:{REST_PORT}"
    values = (*settings.chart_values, settings.values(host))
    releases.install(context.kubeconfig, LOAD_RELEASE, "locust", context.namespace, *values)
    say(f"load: Locust chart installed ({settings.workers} workers, shape {settings.shape})")
    return LocustLoad(
        client.CoreV1Api(context.api),
        client.BatchV1Api(context.api),
        context.namespace,
        seconds_of(settings.run_time),
        say=say,
    )
