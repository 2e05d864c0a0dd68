"""The rehearsal's real load (`rehearse --load locust`): the Locust chart's master and workers
as processes on this machine, against the replica fleet standing for the model Service. (What
a Locust run is and how its stats are read, on any cluster: tooling.runs.locust_load.)

While the story runs: the fleet follows the Service's EndpointSlices, serves Locust's requests
on simulated replicas, writes each pod's CPU from the work it did, and serves each replica's
TF Serving metrics; the HPA scales on the CPU, or in KEDA mode on those metrics through
Prometheus (scraping the fleet's port, fixed before the release is installed).
Locust's live stats (users, req/s, p50, p95, failures) are read from the master's web API.
"""

from __future__ import annotations

import threading
import time
import urllib.error
from dataclasses import dataclass, field
from pathlib import Path

from tooling.fleet.endpoints import Fleet
from tooling.fleet.server import fleet_server
from tooling.fleet.usage import UsageWriter
from tooling.loadgen.live_stats import LiveStats, read_from_url, without_held_rate
from tooling.loadgen.run import seconds_of
from tooling.rehearsal import locust_processes
from tooling.runs.locust_load import LocustSettings, sample_of
from tooling.runs.timeline import LoadSample

FIRST_ENDPOINT_SECONDS = 60  # the first replica's endpoint, before Locust starts
LOCUST_START_SECONDS = 90  # workers connecting, then the run's end and results


@dataclass
class FleetLocustLoad:
    """A LoadSource: the fleet and real Locust, from its `run` until the story stops it."""

    fleet: Fleet
    usage: UsageWriter
    settings: LocustSettings
    values: dict  # the Locust chart's values, as installed in the cluster
    results: Path
    period: float = 2.0
    fleet_port: int = 0  # 0: any free port
    current: LiveStats | None = None
    finished: threading.Event = field(default_factory=threading.Event)
    failure: str | None = None

    @property
    def max_seconds(self) -> float:
        return seconds_of(self.settings.run_time) + FIRST_ENDPOINT_SECONDS + LOCUST_START_SECONDS

    def latest(self) -> LoadSample:
        return sample_of(self.current)

    def run(self, stop: threading.Event) -> None:
        with fleet_server(self.fleet, port=self.fleet_port) as url:
            for loop in (self.fleet.run, self.usage.run):
                threading.Thread(target=loop, args=(stop,), daemon=True).start()
            deadline = time.monotonic() + FIRST_ENDPOINT_SECONDS
            while not self.fleet.ready and not stop.wait(0.5):
                if time.monotonic() > deadline:
                    raise RuntimeError("no ready endpoint of the model Service reached the fleet")
            locust = locust_processes.commands(self.values, url, self.results)
            processes = locust_processes.start(locust, self.results)
            web = f"http://127.0.0.1:{locust.web_port}"
            try:
                while not stop.wait(self.period):
                    if processes[0].poll() is not None:  # the master quit: the run is over
                        self.current = None  # no users any more (its last stats stay in CSV)
                        self.finished.set()
                        continue
                    self.read(web)
            finally:
                for process in processes:
                    if process.poll() is None:
                        process.terminate()
                for process in processes:
                    process.wait(timeout=30)

    def read(self, web: str) -> None:
        try:
            self.current = without_held_rate(read_from_url(web, timeout=2), self.current)
        except (OSError, urllib.error.URLError):
            return  # not listening yet, or quitting after the run
