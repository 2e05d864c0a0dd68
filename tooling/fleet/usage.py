"""Each replica's CPU, from the work it did: its busy core-seconds over the last metrics window,
written to its pod's `kwok.x-k8s.io/usage-cpu` annotation. kwok serves that as the pod's
kubelet metrics; metrics-server and the HPA read it as they read a real pod's."""

from __future__ import annotations

import collections
import contextlib
import threading
import time
from dataclasses import dataclass, field

from kubernetes import client

from tooling.fleet.endpoints import Fleet
from tooling.kube import list_items
from tooling.pod_usage import usage_cpu, write_usage_cpu
from tooling.runs.transient import TRANSIENT_ERRORS


@dataclass
class UsageWriter:
    fleet: Fleet
    selector: str  # the model server's pods
    window_seconds: float  # metrics-server's resolution: the rate is taken over this
    period: float
    samples: dict[str, collections.deque] = field(default_factory=dict)
    written: dict[str, str] = field(default_factory=dict)

    def cores_used(self, pod: str, now: float) -> float:
        """Core-seconds done over the last window ÷ its length (less at a replica's start)."""
        replica = self.fleet.replicas.get(pod)
        if replica is None:
            return 0.0
        history = self.samples.setdefault(pod, collections.deque())
        history.append((now, replica.cpu.busy_core_seconds()))
        while len(history) > 2 and now - history[1][0] >= self.window_seconds:
            history.popleft()
        (then, busy_then), (_, busy_now) = history[0], history[-1]
        return (busy_now - busy_then) / (now - then) if now > then else 0.0

    def step(self) -> None:
        now = time.monotonic()
        core = self.fleet.core
        pods = list_items(
            core.list_namespaced_pod, self.fleet.namespace, label_selector=self.selector
        )
        for pod in pods:
            name = pod["metadata"]["name"]
            # a pod with no replica (not ready yet) idles
            used = self.cores_used(name, now) if name in self.fleet.replicas else 0.0
            value = usage_cpu(used)
            if self.written.get(name) != value:
                with contextlib.suppress(client.ApiException):  # a pod that just went away
                    write_usage_cpu(core, self.fleet.namespace, name, value)
                    self.written[name] = value

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(*TRANSIENT_ERRORS):  # the next period retries
                self.step()
            stop.wait(self.period)
