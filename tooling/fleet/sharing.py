"""A replica's CPU as a processor-sharing server (asyncio).

A replica has `cores` CPU; each request needs `work` core-seconds (the model's measured
CPU-seconds per prediction). The requests in flight share the cores equally, and one request
alone cannot use more than `per_request_cores` (TF Serving runs one prediction on a few intra-op
threads: the measured CPU-seconds over the measured single-request latency). So with n in
flight each progresses at min(per_request_cores, cores / n) core-seconds per second, exactly
(event by event, no time steps). The core-seconds actually used are counted, for the pod's CPU.
"""

from __future__ import annotations

import asyncio
import itertools
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

    def rate(self) -> float:
        """Core-seconds per second each request in flight gets now."""
        return min(self.per_request_cores, self.cores / len(self.jobs)) if self.jobs else 0.0

    def advance(self) -> None:
        """Brings every job's remaining work and the busy total up to now."""
        with self.lock:
            now = self.clock()
            elapsed, self.updated = now - self.updated, now
            rate = self.rate()
            for job in self.jobs.values():
                job.remaining -= rate * elapsed
            self.busy += rate * elapsed * len(self.jobs)

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
            delay = min(job.remaining for job in self.jobs.values()) / self.rate()
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
