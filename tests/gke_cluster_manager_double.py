"""A test double of GKE's ClusterManager gRPC service, in process.

It serves the real `google.container.v1.ClusterManager` methods the tooling calls
(CreateCluster, GetCluster, DeleteCluster, GetOperation) with the messages from
google-cloud-container's own protos, so the real ClusterManagerClient talks to it over a real
gRPC channel. Operations stay RUNNING for `polls_until_done` GetOperation calls; `fail` makes
the next call of a method abort with a status code and message, as GKE's errors do.
"""

from __future__ import annotations

import itertools
from concurrent import futures
from dataclasses import dataclass, field

import grpc
from google.cloud import container_v1
from google.cloud.container_v1.services.cluster_manager.transports import (
    ClusterManagerGrpcTransport,
)

SERVICE = "google.container.v1.ClusterManager"
Status = container_v1.Operation.Status


@dataclass
class ClusterManagerDouble:
    polls_until_done: int = 2
    clusters: dict[str, container_v1.Cluster] = field(default_factory=dict)
    operations: dict[str, dict] = field(default_factory=dict)
    requests: list[tuple[str, object]] = field(default_factory=list)
    failures: dict[str, tuple[grpc.StatusCode, str]] = field(default_factory=dict)
    operation_error: str = ""  # an operation that ends DONE with this error message
    ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def fail(self, method: str, code: grpc.StatusCode, message: str) -> None:
        self.failures[method] = (code, message)

    def _enter(self, method: str, request: object, context: grpc.ServicerContext) -> None:
        self.requests.append((method, request))
        if method in self.failures:
            code, message = self.failures.pop(method)
            context.abort(code, message)

    def _operation(
        self, kind: container_v1.Operation.Type, cluster_path: str
    ) -> container_v1.Operation:
        name = f"operation-{next(self.ids)}"
        self.operations[name] = {"polls": 0, "kind": kind, "cluster": cluster_path}
        return container_v1.Operation(name=name, operation_type=kind, status=Status.RUNNING)

    def create_cluster(
        self, request: container_v1.CreateClusterRequest, context
    ) -> container_v1.Operation:
        self._enter("CreateCluster", request, context)
        path = f"{request.parent}/clusters/{request.cluster.name}"
        if path in self.clusters:
            context.abort(grpc.StatusCode.ALREADY_EXISTS, f"Already exists: {path}")
        cluster = container_v1.Cluster(request.cluster)
        cluster.status = container_v1.Cluster.Status.PROVISIONING
        cluster.endpoint = "203.0.113.10"
        cluster.master_auth = container_v1.MasterAuth(cluster_ca_certificate="Q0EgZGF0YQ==")
        self.clusters[path] = cluster
        return self._operation(container_v1.Operation.Type.CREATE_CLUSTER, path)

    def get_cluster(self, request: container_v1.GetClusterRequest, context) -> container_v1.Cluster:
        self._enter("GetCluster", request, context)
        if request.name not in self.clusters:
            context.abort(grpc.StatusCode.NOT_FOUND, f"Not found: {request.name}.")
        return self.clusters[request.name]

    def delete_cluster(
        self, request: container_v1.DeleteClusterRequest, context
    ) -> container_v1.Operation:
        self._enter("DeleteCluster", request, context)
        if request.name not in self.clusters:
            context.abort(grpc.StatusCode.NOT_FOUND, f"Not found: {request.name}.")
        self.clusters[request.name].status = container_v1.Cluster.Status.STOPPING
        return self._operation(container_v1.Operation.Type.DELETE_CLUSTER, request.name)

    def get_operation(
        self, request: container_v1.GetOperationRequest, context
    ) -> container_v1.Operation:
        self._enter("GetOperation", request, context)
        name = request.name.rsplit("/", 1)[-1]
        state = self.operations[name]
        state["polls"] += 1
        operation = container_v1.Operation(
            name=name, operation_type=state["kind"], status=Status.RUNNING
        )
        if state["polls"] < self.polls_until_done:
            return operation
        operation.status = Status.DONE
        if self.operation_error:
            operation.error = {"code": 8, "message": self.operation_error}
            self.clusters.pop(state["cluster"], None)
        elif state["kind"] == container_v1.Operation.Type.CREATE_CLUSTER:
            self.clusters[state["cluster"]].status = container_v1.Cluster.Status.RUNNING
            self.clusters[state["cluster"]].current_node_count = 1
        else:
            self.clusters.pop(state["cluster"], None)
        return operation

    def handler(self) -> grpc.GenericRpcHandler:
        def unary(method, request_type, response_type):
            return grpc.unary_unary_rpc_method_handler(
                method,
                request_deserializer=request_type.deserialize,
                response_serializer=response_type.serialize,
            )

        return grpc.method_handlers_generic_handler(
            SERVICE,
            {
                "CreateCluster": unary(
                    self.create_cluster, container_v1.CreateClusterRequest, container_v1.Operation
                ),
                "GetCluster": unary(
                    self.get_cluster, container_v1.GetClusterRequest, container_v1.Cluster
                ),
                "DeleteCluster": unary(
                    self.delete_cluster, container_v1.DeleteClusterRequest, container_v1.Operation
                ),
                "GetOperation": unary(
                    self.get_operation, container_v1.GetOperationRequest, container_v1.Operation
                ),
            },
        )

    def methods(self) -> list[str]:
        return [method for method, _ in self.requests]


def serve(
    double: ClusterManagerDouble,
) -> tuple[grpc.Server, container_v1.ClusterManagerClient, str]:
    """Starts the double on a free loopback port; returns it, a real client bound to it, and
    its address."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((double.handler(),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    client = container_v1.ClusterManagerClient(
        transport=ClusterManagerGrpcTransport(channel=channel)
    )
    return server, client, f"127.0.0.1:{port}"
