"""Create (or reuse), wait for, and delete a GKE cluster with the official client.

Every call goes through google-cloud-container's ClusterManagerClient; long-running operations
are polled with GetOperation until DONE, with a progress line each poll.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import grpc
from google.api_core import exceptions
from google.cloud import container_v1

from tooling.errors import UserError
from tooling.gke.cluster_request import GkeClusterSpec, cluster_request
from tooling.gke.errors import readable

DONE = container_v1.Operation.Status.DONE
BUSY_CLUSTER_STATES = (
    container_v1.Cluster.Status.PROVISIONING,
    container_v1.Cluster.Status.RECONCILING,
)


# HOST:PORT of a local, plaintext ClusterManager (an emulator, or the tests' double) to use
# instead of container.googleapis.com.
LOCAL_ENDPOINT_VARIABLE = "RESNET_SERVING_GKE_ENDPOINT"


def make_client() -> container_v1.ClusterManagerClient:
    """A client with Application Default Credentials (`gcloud auth application-default login`),
    or one bound to $RESNET_SERVING_GKE_ENDPOINT when that is set."""
    import google.auth.exceptions

    endpoint = os.environ.get(LOCAL_ENDPOINT_VARIABLE)
    if endpoint:
        from google.cloud.container_v1.services.cluster_manager.transports import (
            ClusterManagerGrpcTransport,
        )

        channel = grpc.insecure_channel(endpoint)
        return container_v1.ClusterManagerClient(
            transport=ClusterManagerGrpcTransport(channel=channel)
        )
    try:
        return container_v1.ClusterManagerClient()
    except google.auth.exceptions.DefaultCredentialsError as error:
        raise UserError(
            "no Google credentials found: run `gcloud auth application-default login` (or set "
            "GOOGLE_APPLICATION_CREDENTIALS to a key file) and try again"
        ) from error


@dataclass
class GkeClusters:
    client: container_v1.ClusterManagerClient
    say: Callable[[str], None] = print
    poll_seconds: float = 10.0
    timeout_seconds: float = 45 * 60

    def find(self, spec: GkeClusterSpec) -> container_v1.Cluster | None:
        try:
            return self.client.get_cluster(name=spec.path)
        except exceptions.NotFound:
            return None
        except exceptions.GoogleAPICallError as error:
            raise readable(error, f"look up cluster {spec.name}", spec.project) from error

    def create(self, spec: GkeClusterSpec) -> container_v1.Cluster:
        """Creates the cluster and waits for it; one that exists with that name is reused."""
        existing = self.find(spec)
        if existing is not None:
            self.say(
                f"gke: reusing cluster {spec.name} in {spec.location} "
                f"({existing.status.name}, {existing.current_node_count} nodes)"
            )
            if existing.status in BUSY_CLUSTER_STATES:
                self.wait_until_running(spec)
                existing = self.find(spec)
            return existing
        self.say(
            f"gke: creating cluster {spec.name} in {spec.location} ({spec.machine_type}, "
            f"autoscaled {spec.min_nodes}-{spec.max_nodes} nodes"
            f"{' per zone' if spec.regional else ''}); this takes 5-10 minutes …"
        )
        try:
            operation = self.client.create_cluster(
                parent=spec.parent, cluster=cluster_request(spec)
            )
        except exceptions.AlreadyExists:
            return self.create(spec)  # created meanwhile by someone else: reuse it
        except exceptions.GoogleAPICallError as error:
            raise readable(error, f"create cluster {spec.name}", spec.project) from error
        self.wait(spec, operation, f"create cluster {spec.name}")
        created = self.find(spec)
        if created is None:
            raise UserError(f"cluster {spec.name} was created but cannot be read back; retry")
        self.say(f"gke: ✓ cluster {spec.name} is {created.status.name} at {created.endpoint}")
        return created

    def delete(self, spec: GkeClusterSpec) -> bool:
        """Deletes the cluster and waits; False when there was none."""
        if self.find(spec) is None:
            self.say(f"gke: no cluster {spec.name} in {spec.location}; nothing to delete")
            return False
        self.say(f"gke: deleting cluster {spec.name}; this takes a few minutes …")
        try:
            operation = self.client.delete_cluster(name=spec.path)
        except exceptions.GoogleAPICallError as error:
            raise readable(error, f"delete cluster {spec.name}", spec.project) from error
        self.wait(spec, operation, f"delete cluster {spec.name}")
        self.say(f"gke: ✓ cluster {spec.name} deleted")
        return True

    def wait(self, spec: GkeClusterSpec, operation: container_v1.Operation, action: str) -> None:
        """Polls the operation until DONE; its error, if any, becomes a UserError."""
        started = time.monotonic()
        name = f"{spec.parent}/operations/{operation.name}"
        while operation.status != DONE:
            if time.monotonic() - started > self.timeout_seconds:
                raise UserError(
                    f"{action}: still {operation.status.name} after "
                    f"{self.timeout_seconds / 60:.0f} min; check it with `gcloud container "
                    f"operations describe {operation.name} --location {spec.location}`"
                )
            time.sleep(self.poll_seconds)
            try:
                operation = self.client.get_operation(name=name)
            except exceptions.GoogleAPICallError as error:
                raise readable(error, action, spec.project) from error
            self.say(
                f"gke: {action}: {operation.status.name.lower()} "
                f"({time.monotonic() - started:.0f} s)"
            )
        problem = operation.error.message or operation.status_message
        if problem:
            raise readable(
                exceptions.from_grpc_status(operation.error.code, problem), action, spec.project
            )

    def wait_until_running(self, spec: GkeClusterSpec) -> None:
        started = time.monotonic()
        while (cluster := self.find(spec)) is not None and cluster.status in BUSY_CLUSTER_STATES:
            if time.monotonic() - started > self.timeout_seconds:
                raise UserError(f"cluster {spec.name} stayed {cluster.status.name}; retry later")
            self.say(f"gke: cluster {spec.name} is {cluster.status.name.lower()} …")
            time.sleep(self.poll_seconds)
