"""The namespace the model server and the load run in."""

from __future__ import annotations

from kubernetes import client

from tooling.names import APP_NAMESPACE


def ensure_app_namespace(core: client.CoreV1Api, namespace: str = APP_NAMESPACE) -> None:
    """The app namespace with Pod Security Standards *restricted* enforced (kept if present)."""
    manifest = {
        "metadata": {
            "name": namespace,
            "labels": {
                "pod-security.kubernetes.io/enforce": "restricted",
                "pod-security.kubernetes.io/enforce-version": "latest",
            },
        }
    }
    try:
        core.create_namespace(manifest)
    except client.ApiException as error:
        if error.status != 409:
            raise
