"""A replica's CPU as a limited processor-sharing server (asyncio).

A replica has `cores` CPU; each request needs `work` core-seconds (the model's measured
CPU-seconds per prediction). One request alone cannot use more than `per_request_cores` (TF
runs one prediction on a few intra-op threads: the measured CPU-seconds over the measured
single-request latency), so at most m = ceil(cores / per_request_cores) run side by side and
share the cores equally; later ones wait their turn, first come first served. With r running,
each progresses at min(per_request_cores, cores / r) core-seconds per second, exactly (event by
event, no time steps). The core-seconds actually used are counted, for the pod's CPU.

(Plain processor sharing, every request in flight at once, keeps a burst of requests finishing
together; the real server lets the first ones out sooner: bench/fleet_fidelity.py.)
"""

from __future__ import annotations

import asyncio
import itertools
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

FINISHED = 1e-9  # core-seconds left that count as done (float rounding)


class ReplicaKilled(Exception):
    """The replica died (its pod's grace period ended) with this request in flight."""


@dataclass
class Job:
    remaining: float  # core-seconds of work left
    done: asyncio.Future


@dataclass
class ProcessorSharing:
    cores: float
    per_request_cores: float
    clock: Callable[[], float] = time.monotonic
    jobs: dict[int, Job] = field(default_factory=dict)
    busy: float = 0.0  # core-seconds used so far
    updated: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock)
    ids: itertools.count = field(default_factory=itertools.count)
    timer: asyncio.TimerHandle | None = None

    def __post_init__(self) -> None:
        if self.cores <= 0 or self.per_request_cores <= 0:
            raise ValueError("cores and per_request_cores must be positive")
        self.updated = self.clock()

    @property
    def side_by_side(self) -> int:
        """How many requests run at once (the rest wait)."""
        return max(1, math.ceil(self.cores / self.per_request_cores - 1e-9))

    def running(self) -> list[Job]:
        """The oldest requests, up to side_by_side (dicts keep arrival order)."""
        return list(itertools.islice(self.jobs.values(), self.side_by_side))

    def rate(self) -> float:
        """Core-seconds per second each running request gets now."""
        running = min(len(self.jobs), self.side_by_side)
        return min(self.per_request_cores, self.cores / running) if running else 0.0

    def advance(self) -> None:
        """Brings the running jobs' remaining work and the busy total up to now."""
        with self.lock:
            now = self.clock()
            elapsed, self.updated = now - self.updated, now
            rate, running = self.rate(), self.running()
            for job in running:
                job.remaining -= rate * elapsed
            self.busy += rate * elapsed * len(running)

    def busy_core_seconds(self) -> float:
        """Core-seconds used up to now (safe from any thread)."""
        self.advance()
        with self.lock:
            return self.busy

    def reschedule(self) -> None:
        """Finishes the jobs that are done; sets a timer for the next one to finish."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        with self.lock:
            finished = [key for key, job in self.jobs.items() if job.remaining <= FINISHED]
            for key in finished:
                job = self.jobs.pop(key)
                if not job.done.done():
                    job.done.set_result(None)
            if not self.jobs:
                return
            delay = min(job.remaining for job in self.running()) / self.rate()
        self.timer = asyncio.get_running_loop().call_later(max(0.0, delay), self.tick)

    def tick(self) -> None:
        self.advance()
        self.reschedule()

    async def serve(self, work: float) -> None:
        """Returns when `work` core-seconds have been done for this request; raises
        ReplicaKilled if the replica dies first."""
        self.advance()
        key = next(self.ids)
        job = Job(work, asyncio.get_running_loop().create_future())
        with self.lock:
            self.jobs[key] = job
        self.reschedule()
        try:
            await job.done
        finally:  # done, killed, or the client went away: its share goes to the others
            self.advance()
            with self.lock:
                self.jobs.pop(key, None)
            self.reschedule()

    def kill(self) -> int:
        """Fails every request in flight (the process is gone); returns how many."""
        self.advance()
        with self.lock:
            jobs = list(self.jobs.values())
            self.jobs.clear()
        for job in jobs:
            if not job.done.done():
                job.done.set_exception(ReplicaKilled())
        self.reschedule()
        return len(jobs)

    @property
    def in_flight(self) -> int:
        return len(self.jobs)
