"""The simulated replicas behind the model Service: one per ready endpoint, each a
processor-sharing server sized like its pod, and how each one dies when its pod is deleted.

Kubernetes' own rule for a deleted pod: it leaves the Service's endpoints at once (no new
requests), its preStop hook runs, SIGTERM follows, and at `terminationGracePeriodSeconds` after
the deletion it is killed; the preStop sleep is part of that grace period, not added to it.
TF Serving does not stop on SIGTERM (tensorflow/serving#1853), so a replica serves what is in
flight until that kill: a request still running then fails, as a reset connection.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kubernetes import client

from tooling.calibration import Calibration
from tooling.fleet.sharing import ProcessorSharing
from tooling.quantities import cpu_cores

DEFAULT_GRACE_SECONDS = 30.0  # Kubernetes' default terminationGracePeriodSeconds


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
        tests/test_fleet_fidelity.py."""
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
    dies_at: float | None = None  # monotonic time of the kill, once its pod is deleted
    cpu: ProcessorSharing = field(init=False)

    def __post_init__(self) -> None:
        self.cpu = ProcessorSharing(self.cores, min(self.cost.per_request_cores, self.cores))

    async def predict(self, instances: int) -> None:
        await self.cpu.serve(self.cost.cpu_seconds * max(1, instances))


def pod_cores(pod: client.V1Pod, node_allocatable_cpu: float) -> float:
    """CPU one replica may use: its server container's limit, else the node's allocatable."""
    for container in pod.spec.containers or []:
        limits = (container.resources and container.resources.limits) or {}
        if limits.get("cpu"):
            return cpu_cores(limits["cpu"])
    return node_allocatable_cpu


def pod_grace_seconds(pod: client.V1Pod) -> float:
    """When the pod is killed after its deletion: its deletion's grace period once deleted,
    else its spec's terminationGracePeriodSeconds."""
    if pod.metadata.deletion_grace_period_seconds is not None:
        return float(pod.metadata.deletion_grace_period_seconds)
    grace = pod.spec.termination_grace_period_seconds
    return DEFAULT_GRACE_SECONDS if grace is None else float(grace)
