"""Rehearsal timing profiles: `lab` keeps the real controllers' defaults and GKE-like delays;
`fast` compresses every timer so a whole scale-out and scale-in fits in a CI run."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Profile:
    name: str
    hpa_sync_seconds: int  # --horizontal-pod-autoscaler-sync-period
    hpa_downscale_stabilization_seconds: int  # --horizontal-pod-autoscaler-downscale-stabilization
    hpa_cpu_initialization_seconds: int  # --horizontal-pod-autoscaler-cpu-initialization-period
    hpa_initial_readiness_delay_seconds: int  # --horizontal-pod-autoscaler-initial-readiness-delay
    metric_resolution_seconds: int  # metrics-server --metric-resolution
    scan_interval_seconds: float  # cluster-autoscaler --scan-interval
    scale_down_unneeded_seconds: float  # --scale-down-unneeded-time
    scale_down_delay_after_add_seconds: float  # --scale-down-delay-after-add
    node_provisioning_seconds: float  # a new node's time to Ready (GKE: 3-4 min)
    pod_start_seconds: float  # model fetch + load + warmup before a replica is Ready
    usage_update_seconds: float  # how often the load model rewrites pod CPU
    sample_seconds: float  # timeline sampling period

    def metrics_server_args(self) -> dict[str, str]:
        # metrics-server refuses a resolution that is not above its kubelet request timeout.
        timeout = max(1, min(10, self.metric_resolution_seconds // 2))
        return {
            "metric-resolution": f"{self.metric_resolution_seconds}s",
            "kubelet-request-timeout": f"{timeout}s",
        }

    def controller_manager_args(self) -> dict[str, str]:
        return {
            "horizontal-pod-autoscaler-sync-period": f"{self.hpa_sync_seconds}s",
            "horizontal-pod-autoscaler-downscale-stabilization": (
                f"{self.hpa_downscale_stabilization_seconds}s"
            ),
            "horizontal-pod-autoscaler-cpu-initialization-period": (
                f"{self.hpa_cpu_initialization_seconds}s"
            ),
            "horizontal-pod-autoscaler-initial-readiness-delay": (
                f"{self.hpa_initial_readiness_delay_seconds}s"
            ),
        }


PROFILES = {
    "lab": Profile(
        name="lab",
        hpa_sync_seconds=15,
        hpa_downscale_stabilization_seconds=300,
        hpa_cpu_initialization_seconds=300,
        hpa_initial_readiness_delay_seconds=30,
        metric_resolution_seconds=15,
        scan_interval_seconds=10,
        scale_down_unneeded_seconds=600,
        scale_down_delay_after_add_seconds=600,
        node_provisioning_seconds=200,
        pod_start_seconds=45,
        usage_update_seconds=5,
        sample_seconds=5,
    ),
    "fast": Profile(
        name="fast",
        hpa_sync_seconds=3,
        hpa_downscale_stabilization_seconds=20,
        hpa_cpu_initialization_seconds=5,
        hpa_initial_readiness_delay_seconds=2,
        metric_resolution_seconds=10,  # metrics-server refuses less
        scan_interval_seconds=2,
        scale_down_unneeded_seconds=20,
        scale_down_delay_after_add_seconds=20,
        node_provisioning_seconds=8,
        pod_start_seconds=4,
        usage_update_seconds=2,
        sample_seconds=2,
    ),
}


def profile(name: str) -> Profile:
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; use one of: {', '.join(PROFILES)}")
    return PROFILES[name]
