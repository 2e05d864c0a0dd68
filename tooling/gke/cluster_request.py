"""What `cluster create --provider gke` asks GKE for: one Cluster with one autoscaled node pool.

The lab's shape: e2-standard-4 nodes, node-pool autoscaling 1-3, plus Workload Identity on the
cluster (pool PROJECT.svc.id.goog) and on the node pool (GKE_METADATA), so the model-fetch init
container reads the bucket with no key files. The cluster autoscaler's profile is GKE's
`balanced` (its default) or `optimize-utilization` (ClusterAutoscaling.autoscaling_profile).
With `managed_prometheus` (`up --prometheus gmp`) the request turns on Managed Service for
Prometheus' managed collection (monitoringConfig.managedPrometheusConfig), which reads the
release's PodMonitoring for KEDA (tooling.gke.managed_prometheus).
In a region (us-central1) rather than a zone (us-central1-a), GKE applies the node counts per
zone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from google.cloud import container_v1

from tooling.errors import UserError

NAME_PATTERN = re.compile(r"^[a-z]([-a-z0-9]{0,38}[a-z0-9])?$")
ZONE_PATTERN = re.compile(r"^[a-z]+-[a-z]+[0-9]+-[a-z]$")
CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
AUTOSCALING_PROFILES = {
    "balanced": container_v1.ClusterAutoscaling.AutoscalingProfile.BALANCED,
    "optimize-utilization": container_v1.ClusterAutoscaling.AutoscalingProfile.OPTIMIZE_UTILIZATION,
}


@dataclass(frozen=True)
class GkeClusterSpec:
    project: str
    location: str  # a zone (us-central1-a) or a region (us-central1)
    name: str = "resnet-serving"
    machine_type: str = "e2-standard-4"
    min_nodes: int = 1
    max_nodes: int = 3
    node_pool: str = "default-pool"
    disk_size_gb: int = 100
    autoscaling_profile: str = "balanced"
    managed_prometheus: bool = False

    def __post_init__(self) -> None:
        if not self.project:
            raise UserError("--project is required for GKE (your Google Cloud project id)")
        if not self.location:
            raise UserError("--location is required for GKE: a zone (us-central1-a) or region")
        if not NAME_PATTERN.match(self.name):
            raise UserError(
                f"cluster name {self.name!r}: use 1-40 lowercase letters, digits and dashes, "
                "starting with a letter"
            )
        if not 0 <= self.min_nodes <= self.max_nodes or self.max_nodes < 1:
            raise UserError(
                f"--min-nodes {self.min_nodes} / --max-nodes {self.max_nodes}: "
                "need 0 ≤ min ≤ max and max ≥ 1"
            )
        if self.autoscaling_profile not in AUTOSCALING_PROFILES:
            raise UserError(
                f"--autoscaling-profile {self.autoscaling_profile!r}: use one of "
                f"{', '.join(AUTOSCALING_PROFILES)}"
            )

    @property
    def parent(self) -> str:
        return f"projects/{self.project}/locations/{self.location}"

    @property
    def path(self) -> str:
        return f"{self.parent}/clusters/{self.name}"

    @property
    def regional(self) -> bool:
        return not ZONE_PATTERN.match(self.location)

    @property
    def workload_pool(self) -> str:
        return f"{self.project}.svc.id.goog"

    @property
    def kube_context(self) -> str:
        """The context name gcloud would write for this cluster."""
        return f"gke_{self.project}_{self.location}_{self.name}"


def cluster_request(spec: GkeClusterSpec) -> container_v1.Cluster:
    """The Cluster message sent to ClusterManager.CreateCluster."""
    node_pool = container_v1.NodePool(
        name=spec.node_pool,
        initial_node_count=max(spec.min_nodes, 1),
        config=container_v1.NodeConfig(
            machine_type=spec.machine_type,
            disk_size_gb=spec.disk_size_gb,
            oauth_scopes=[CLOUD_PLATFORM_SCOPE],
            workload_metadata_config=container_v1.WorkloadMetadataConfig(
                mode=container_v1.WorkloadMetadataConfig.Mode.GKE_METADATA
            ),
        ),
        autoscaling=container_v1.NodePoolAutoscaling(
            enabled=True, min_node_count=spec.min_nodes, max_node_count=spec.max_nodes
        ),
        management=container_v1.NodeManagement(auto_repair=True, auto_upgrade=True),
    )
    monitoring = (
        {
            "monitoring_config": container_v1.MonitoringConfig(
                managed_prometheus_config=container_v1.ManagedPrometheusConfig(enabled=True)
            )
        }
        if spec.managed_prometheus
        else {}
    )
    return container_v1.Cluster(
        name=spec.name,
        description="resnet-serving: TF Serving ResNet101 with HPA and node-pool autoscaling",
        node_pools=[node_pool],
        autoscaling=container_v1.ClusterAutoscaling(
            autoscaling_profile=AUTOSCALING_PROFILES[spec.autoscaling_profile]
        ),
        workload_identity_config=container_v1.WorkloadIdentityConfig(
            workload_pool=spec.workload_pool
        ),
        release_channel=container_v1.ReleaseChannel(
            channel=container_v1.ReleaseChannel.Channel.REGULAR
        ),
        resource_labels={"app": "resnet-serving"},
        **monitoring,
    )
