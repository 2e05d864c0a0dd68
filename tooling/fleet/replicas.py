"""The simulated replicas behind the model Service: one per ready endpoint, each a
processor-sharing server sized like its pod, and how each one dies when its pod is deleted.

Kubernetes' own rule for a deleted pod: it leaves the Service's endpoints at once (no new
requests), its preStop hook runs, SIGTERM follows, and at `terminationGracePeriodSeconds` after
the deletion it is killed; the preStop sleep is part of that grace period, not added to it.
TF Serving installs no SIGTERM handler (tensorflow/serving#1853): as its container's PID 1 it
ignores SIGTERM and serves until that kill. The chart runs it under a sh that passes SIGTERM
on (`server.stopOnSigterm`, files/run-server.sh), and then it exits when the preStop sleep
ends. Either way a request still running when the replica dies fails, as a reset connection.

Each replica counts its requests as TF Serving does with `--monitoring_config_file` (the
chart's default): `:tensorflow:serving:request_count` and the `request_latency` histogram in
µs (tooling.serving.core.Metrics, the local server's own), served by the fleet's front at the
pod's own path. A replica that dies takes its counters with it, as a process does.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from kubernetes import client

from tooling.calibration import Calibration
from tooling.fleet.sharing import ProcessorSharing
from tooling.names import MODEL_NAME
from tooling.quantities import cpu_cores
from tooling.serving.core import Metrics

DEFAULT_GRACE_SECONDS = 30.0  # Kubernetes' default terminationGracePeriodSeconds
SIGTERM_WRAPPER = "run-server.sh"  # the chart's PID 1 that passes SIGTERM on to TF Serving
# Where the chart says its pod serves TF Serving's metrics (monitoring.prometheus.path); no
# annotation, no metrics (the chart sets it whenever --monitoring_config_file is on).
METRICS_PATH_ANNOTATION = "prometheus.io/path"


@dataclass(frozen=True)
class ModelCost:
    """What one prediction costs on a replica, measured on the real model (`calibrate`)."""

    cpu_seconds: float  # core-seconds per request
    per_request_cores: float  # the cores one request alone can use (CPU-seconds / latency)

    @classmethod
    def measured(cls, calibration: Calibration) -> ModelCost:
        """From `calibrate`'s numbers: the CPU-seconds per request when requests run side by
        side at batch 1, as an unbatched server under load runs them (sequential single
        requests also count TF's threads spinning between them, which a loaded replica does
        not pay; batch 8 is cheaper than a server without batching achieves), and one request
        alone taking the measured batch-1 latency. Checked against the real server by
        bench/fleet_fidelity.py."""
        cpu_seconds = (
            calibration.cpu_seconds_per_request_concurrent
            or calibration.cpu_seconds_per_image_batched
        )
        return cls(cpu_seconds, cpu_seconds / (calibration.wall_ms_batch1_median / 1000))


@dataclass
class SimulatedReplica:
    pod: str
    cores: float
    cost: ModelCost
    grace_seconds: float = DEFAULT_GRACE_SECONDS
    stop_seconds: float | None = None  # its own exit after the deletion (None: not on SIGTERM)
    dies_at: float | None = None  # monotonic time of the kill, once its pod is deleted
    metrics_path: str | None = None  # where its metrics are served; None: not served
    cpu: ProcessorSharing = field(init=False)
    metrics: Metrics = field(default_factory=Metrics)  # TF Serving's request metrics

    def __post_init__(self) -> None:
        self.cpu = ProcessorSharing(self.cores, min(self.cost.per_request_cores, self.cores))

    async def predict(self, instances: int) -> None:
        """Serves one predict call; counted when answered (TF Serving counts a request when it
        returns; one cut off by the replica's death is never counted, its process is gone)."""
        started = time.perf_counter()
        await self.cpu.serve(self.cost.cpu_seconds * max(1, instances))
        self.metrics.record(MODEL_NAME, "OK", "predict", time.perf_counter() - started)

    def seconds_left(self, until_deadline: float) -> float:
        """Its life after the deletion, from the seconds left to the kill deadline: all of them
        when SIGTERM does not stop it, else those until its preStop sleep ends."""
        if self.stop_seconds is None:
            return until_deadline
        return max(0.0, until_deadline - max(0.0, self.grace_seconds - self.stop_seconds))


def pod_cores(pod: client.V1Pod, node_allocatable_cpu: float) -> float:
    """CPU one replica may use: its server container's limit, else the node's allocatable."""
    for container in pod.spec.containers or []:
        limits = (container.resources and container.resources.limits) or {}
        if limits.get("cpu"):
            return cpu_cores(limits["cpu"])
    return node_allocatable_cpu


def pod_metrics_path(pod: client.V1Pod) -> str | None:
    """The path its TF Serving serves Prometheus metrics at, from the chart's annotation."""
    return (pod.metadata.annotations or {}).get(METRICS_PATH_ANNOTATION)


def pod_grace_seconds(pod: client.V1Pod) -> float:
    """When the pod is killed after its deletion: its deletion's grace period once deleted,
    else its spec's terminationGracePeriodSeconds."""
    if pod.metadata.deletion_grace_period_seconds is not None:
        return float(pod.metadata.deletion_grace_period_seconds)
    grace = pod.spec.termination_grace_period_seconds
    return DEFAULT_GRACE_SECONDS if grace is None else float(grace)


def pod_stop_seconds(pod: client.V1Pod) -> float | None:
    """When the pod's server exits by itself after the deletion: at the end of its preStop
    sleep (0 without one) when its command is the chart's SIGTERM wrapper, as the kubelet sends
    SIGTERM when the hook ends; None when TF Serving ignores SIGTERM (it is PID 1, or a child of
    the image's bash entrypoint, which passes nothing on) and lives until the deadline."""
    for container in pod.spec.containers or []:
        if not any(part.endswith("/" + SIGTERM_WRAPPER) for part in container.command or []):
            continue
        hook = container.lifecycle and container.lifecycle.pre_stop
        return float(hook.sleep.seconds) if hook and hook.sleep else 0.0
    return None
