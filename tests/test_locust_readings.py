"""Locust's live rate as a run records it, replayed from a real master's answers.

tests/data/locust-readings.jsonl holds what a Locust 2.47 master with one worker answered on
`/stats/requests`, read every 2 s as the rehearsal reads it, each with the second it was read:
a step shape of 4 users, then 10, then none for its last 12 s before it stopped. The master
refreshes its numbers when its worker reports, every 3 s, so every third reading repeats the
one before it while the load runs without a pause.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

from tooling.loadgen import live_stats
from tooling.report.timeline_plot import requests_per_second
from tooling.runs.locust_load import LocustWatch

READINGS = Path(__file__).parent / "data" / "locust-readings.jsonl"


@dataclass(frozen=True)
class Reading:
    read_at: float
    reply: dict

    @property
    def requests(self) -> int:
        return self.reply["stats"][-1]["num_requests"]


def recorded() -> list[Reading]:
    with open(READINGS) as handle:
        return [Reading(**json.loads(line)) for line in handle]


@dataclass
class RecordedMaster:
    """A CoreV1Api whose service proxy answers with the readings' replies in turn; `now` is
    when the last one was read."""

    readings: list[Reading]
    now: float = 0.0

    def connect_get_namespaced_service_proxy_with_path(self, *args, **kwargs) -> SimpleNamespace:
        reading = self.readings.pop(0)
        self.now = reading.read_at
        return SimpleNamespace(data=json.dumps(reading.reply).encode())


def timeline_rows(readings: list[Reading], monkeypatch) -> list[dict[str, float | None]]:
    """The load columns a recorder sampling at each reading writes, as `read_timeline` reads
    them back (through `watch`'s load source: the master's service proxy)."""
    master = RecordedMaster(list(readings))
    monkeypatch.setattr(live_stats, "monotonic", lambda: master.now)
    watch = LocustWatch(master, "resnet-serving")
    rows = []
    for reading in readings:
        sample = watch.latest()
        rows.append(
            {
                "t_seconds": reading.read_at,
                "users": float(sample.users),
                "offered_rps": round(sample.offered_rps, 2),
            }
        )
    return rows


def test_the_recording_repeats_readings_while_users_run():
    readings = recorded()
    repeats = [
        later.read_at
        for earlier, later in itertools.pairwise(readings)
        if later.reply["user_count"] and later.requests == earlier.requests
    ]
    assert repeats == [6.01, 12.02, 18.03, 24.04, 30.04]


def test_a_running_load_keeps_locusts_rate_between_its_refreshes(monkeypatch):
    """A reading with no new request since the one before, users on, is Locust's numbers
    not refreshed yet: its rate stands, where it used to read 0."""
    rows = timeline_rows(recorded(), monkeypatch)
    rate = {row["t_seconds"]: row["offered_rps"] for row in rows}
    assert [rate[t] for t in (12.02, 18.03, 24.04, 30.04)] == [6.86, 8.0, 14.2, 20.0]
    running = [r for r in rows if r["users"] and r["t_seconds"] >= 8.02]  # Locust's first rate
    assert min(row["offered_rps"] for row in running) == 6.0
    drawn = dict(zip((row["t_seconds"] for row in rows), requests_per_second(rows), strict=True))
    assert all(drawn[row["t_seconds"]] == row["offered_rps"] for row in running)


def test_a_stopped_load_reads_0_though_locust_holds_its_last_rate(monkeypatch):
    readings = recorded()
    rows = timeline_rows(readings, monkeypatch)
    stopped = [row for row in rows if row["t_seconds"] >= 32.04]
    assert {reading.reply["current_rps"] for reading in readings[-7:]} == {20.0}
    assert [row["users"] for row in stopped] == [0] * 7
    assert [row["offered_rps"] for row in stopped] == [0] * 7
    assert requests_per_second(rows)[-7:] == [0] * 7


def test_users_on_with_no_request_completing_reads_0_once_locust_surely_refreshed(monkeypatch):
    """The reading at 28.04 s again and again: the load is stuck (nothing completes). Within
    STALLED_SECONDS that is Locust not having refreshed; past it, 0 req/s."""
    stuck = next(reading for reading in recorded() if reading.read_at == 28.04)
    again = [Reading(t, stuck.reply) for t in (28.04, 31.0, 34.0, 37.0, 40.0, 43.0)]
    rows = timeline_rows(again, monkeypatch)
    assert live_stats.STALLED_SECONDS == 10
    assert [row["offered_rps"] for row in rows] == [20.0, 20.0, 20.0, 20.0, 0.0, 0.0]
