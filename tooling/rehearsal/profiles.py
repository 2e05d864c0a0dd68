"""Rehearsal timing profiles: `lab` keeps the real controllers' defaults and GKE-like delays;
`fast` compresses every timer so a whole scale-out and scale-in fits in a CI run.

GKE's cluster autoscaling profiles (`balanced`, `optimize-utilization`) change how the node
autoscaler scales down; `scale_down` gives the settings both node autoscalers use.
"""

from __future__ import annotations

from dataclasses import dataclass

from tooling.errors import UserError

# GKE's ClusterAutoscaling.autoscaling_profile values (balanced is GKE's default).
AUTOSCALING_PROFILES = ("balanced", "optimize-utilization")
# optimize-utilization "scales down more aggressively: can remove more nodes, and remove nodes
# faster" (GKE's cluster autoscaler page). Google publishes no flag values; the rehearsal's
# reading: unneeded time and delay after a scale-up cut to a fifth, nodes under 65 % requested
# (not 50 %) count as unneeded.
OPTIMIZE_UTILIZATION_TIME_FACTOR = 0.2
OPTIMIZE_UTILIZATION_THRESHOLD = 0.65
BALANCED_THRESHOLD = 0.5  # --scale-down-utilization-threshold's default


@dataclass(frozen=True)
class ScaleDown:
    """When a node autoscaler removes a node (the cluster-autoscaler's scale-down flags)."""

    unneeded_seconds: float  # --scale-down-unneeded-time
    delay_after_add_seconds: float  # --scale-down-delay-after-add
    utilization_threshold: float  # --scale-down-utilization-threshold


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
    # --unremovable-node-recheck-timeout and --scale-down-delay-after-failure (None: CA's
    # defaults, 5 min and 3 min)
    scale_down_retry_seconds: float | None
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

    def scale_down(self, autoscaling_profile: str = "balanced") -> ScaleDown:
        """The profile's scale-down timings under one of GKE's autoscaling profiles."""
        if autoscaling_profile not in AUTOSCALING_PROFILES:
            raise UserError(
                f"unknown autoscaling profile {autoscaling_profile!r}; use one of: "
                f"{', '.join(AUTOSCALING_PROFILES)}"
            )
        if autoscaling_profile == "balanced":
            return ScaleDown(
                self.scale_down_unneeded_seconds,
                self.scale_down_delay_after_add_seconds,
                BALANCED_THRESHOLD,
            )
        return ScaleDown(
            self.scale_down_unneeded_seconds * OPTIMIZE_UTILIZATION_TIME_FACTOR,
            self.scale_down_delay_after_add_seconds * OPTIMIZE_UTILIZATION_TIME_FACTOR,
            OPTIMIZE_UTILIZATION_THRESHOLD,
        )

    def cluster_autoscaler_args(self, autoscaling_profile: str = "balanced") -> dict[str, str]:
        """The real cluster-autoscaler's flags for this profile (lab: its defaults)."""
        scale_down = self.scale_down(autoscaling_profile)
        args = {
            "scan-interval": seconds(self.scan_interval_seconds),
            "scale-down-unneeded-time": seconds(scale_down.unneeded_seconds),
            "scale-down-delay-after-add": seconds(scale_down.delay_after_add_seconds),
            "scale-down-utilization-threshold": f"{scale_down.utilization_threshold}",
        }
        if self.scale_down_retry_seconds is not None:
            args["unremovable-node-recheck-timeout"] = seconds(self.scale_down_retry_seconds)
            args["scale-down-delay-after-failure"] = seconds(self.scale_down_retry_seconds)
        return args

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
        scale_down_retry_seconds=None,
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
        scale_down_retry_seconds=20,
        node_provisioning_seconds=8,
        pod_start_seconds=4,
        usage_update_seconds=2,
        sample_seconds=2,
    ),
}


def seconds(value: float) -> str:
    """A Go duration flag value: whole seconds where they are whole."""
    return f"{value:g}s"


def profile(name: str) -> Profile:
    if name not in PROFILES:
        raise UserError(f"unknown profile {name!r}; use one of: {', '.join(PROFILES)}")
    return PROFILES[name]
