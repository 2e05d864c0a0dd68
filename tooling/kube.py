"""Talking to a cluster: an API client whose every call has a timeout (an API server that
stops answering makes a call fail, never hang), and what a Node's status says."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from kubernetes import client, config

# (connect, read) seconds for each API call that names none; list calls of a few hundred
# objects answer in well under a second, so a read this long means the server is not there.
REQUEST_TIMEOUT = (5.0, 10.0)


class TimedApiClient(client.ApiClient):
    """An ApiClient whose calls time out after REQUEST_TIMEOUT unless they say otherwise."""

    def call_api(
        self,
        method: str,
        url: str,
        header_params: dict | None = None,
        body: object = None,
        post_params: list | None = None,
        _request_timeout: float | tuple[float, float] | None = None,
    ) -> object:
        return super().call_api(
            method, url, header_params, body, post_params, _request_timeout or REQUEST_TIMEOUT
        )


def api_client(kubeconfig: Path) -> client.ApiClient:
    """A client for the kubeconfig's current context, with timeouts on every call."""
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    configuration.retries = 0  # a call that times out fails at once; callers retry on their own
    return TimedApiClient(configuration)


def server_side_apply(api: client.ApiClient, manifests: list[dict]) -> None:
    """Server-side apply of each manifest as this project's field manager: made, or brought to
    this shape (conflicts with other managers forced). A kind the cluster does not serve raises
    kubernetes.dynamic.exceptions.ResourceNotFoundError, for the caller to say what installs it."""
    from kubernetes import dynamic

    resources = dynamic.DynamicClient(api).resources
    for manifest in manifests:
        resource = resources.get(api_version=manifest["apiVersion"], kind=manifest["kind"])
        resource.server_side_apply(
            body=manifest,
            name=manifest["metadata"]["name"],
            namespace=manifest["metadata"].get("namespace"),
            field_manager="resnet-serving",
            force_conflicts=True,
        )


def node_condition_ready(node: client.V1Node) -> bool:
    """The node's Ready condition is True (what a node autoscaler waits for)."""
    return any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or [])


def node_takes_pods(node: client.V1Node) -> bool:
    """Ready and not cordoned: a node the scheduler may use (what the timeline counts)."""
    return not node.spec.unschedulable and node_condition_ready(node)


def list_items(list_call: Callable[..., object], *args: object, **kwargs: object) -> list[dict]:
    """A list call's items as plain JSON. Loops that list hundreds of pods every few seconds
    use it: the client's model objects cost about 1 ms a pod to build (bench
    capacity_rehearsal.py), JSON a hundredth of that."""
    response = list_call(*args, _preload_content=False, **kwargs)
    return json.loads(response.data)["items"]


def pod_ready(pod: dict) -> bool:
    """A pod (as JSON) that is Running with its Ready condition True."""
    status = pod.get("status", {})
    return status.get("phase") == "Running" and any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )
