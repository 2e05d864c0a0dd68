"""Live numbers of a running Locust master, from its web API (`GET /stats/requests`).

Headless runs start Locust with `--autostart` (the test starts at once, as with --headless,
but the web API stays up), so the same JSON can be read from a local master over HTTP or from
a master in a cluster through the API server's service proxy — no Prometheus needed.
"""

from __future__ import annotations

import dataclasses
import json
import urllib.request
from dataclasses import dataclass
from time import monotonic

from kubernetes import client

RUNNING_STATES = ("spawning", "running")
# The master refreshes its numbers when a worker reports (every 3 s) and its web API repeats an
# answer for 2 s: under load the request count moves at least every 5 s. Unchanged for longer,
# with users on, nothing completes.
STALLED_SECONDS = 10.0


@dataclass(frozen=True)
class LiveStats:
    """One reading of the master: users, current requests/s, current p50/p95, totals; when it
    was read and since when the master has shown its request count (time.monotonic())."""

    state: str
    users: int
    rps: float
    p50_ms: float | None
    p95_ms: float | None
    requests: int
    failures: int
    read_at: float = 0.0
    counted_since: float = 0.0

    @property
    def running(self) -> bool:
        return self.state in RUNNING_STATES

    def line(self) -> str:
        def ms(value: float | None) -> str:
            return "-" if value is None else f"{value:.0f} ms"

        return (
            f"{self.users} users, {self.rps:.1f} req/s, p50 {ms(self.p50_ms)}, "
            f"p95 {ms(self.p95_ms)}, {self.requests} requests, {self.failures} failures"
        )


def parse_stats(report: dict, read_at: float = 0.0) -> LiveStats:
    """LiveStats from the JSON of `/stats/requests` (the last `stats` row is the aggregate),
    read at `read_at`."""
    total = (report.get("stats") or [{}])[-1]
    percentiles = report.get("current_response_time_percentiles") or {}

    def percentile(name: str) -> float | None:
        value = percentiles.get(f"response_time_percentile_{name}")
        return None if value in (None, 0) else float(value)

    return LiveStats(
        state=str(report.get("state", "missing")),
        users=int(report.get("user_count") or 0),
        rps=float(report.get("current_rps") or 0.0),
        p50_ms=percentile("0.5"),
        p95_ms=percentile("0.95"),
        requests=int(total.get("num_requests") or 0),
        failures=int(total.get("num_failures") or 0),
        read_at=read_at,
        counted_since=read_at,
    )


def without_held_rate(stats: LiveStats, previous: LiveStats | None) -> LiveStats:
    """The reading with Locust's held rate dropped. Locust's `current_rps` averages the
    seconds before its *last request*, not before now, so once requests stop (the shape has
    ended and the users are gone, or nothing completes) it reports the last rate it saw for
    as long as the master runs. No users is 0 req/s; so is a request count unchanged since
    `previous` (the reading before) for more than STALLED_SECONDS. A count unchanged for less
    is the master not having refreshed yet, not a pause: its rate stands. (A count lower than
    before is a new test: not held.)"""
    if previous is not None and stats.requests == previous.requests:
        stats = dataclasses.replace(stats, counted_since=previous.counted_since)
    stalled = stats.read_at - stats.counted_since > STALLED_SECONDS
    if (stats.users == 0 or stalled) and stats.rps:
        return dataclasses.replace(stats, rps=0.0)
    return stats


def read_from_url(web_url: str, timeout: float = 5.0) -> LiveStats:
    """Reads a master's web API directly, e.g. http://127.0.0.1:8089."""
    with urllib.request.urlopen(f"{web_url.rstrip('/')}/stats/requests", timeout=timeout) as reply:
        return parse_stats(json.load(reply), read_at=monotonic())


def read_through_service_proxy(
    core: client.CoreV1Api, namespace: str, service: str, port_name: str = "web"
) -> LiveStats:
    """Reads a master's web API in a cluster through the API server's service proxy."""
    reply = core.connect_get_namespaced_service_proxy_with_path(
        f"{service}:{port_name}",
        namespace,
        "stats/requests",
        _preload_content=False,
        _request_timeout=5,
    )
    return parse_stats(json.loads(reply.data), read_at=monotonic())
