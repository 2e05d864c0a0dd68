"""kind clusters for laptops with Docker: create (or reuse), metrics-server, delete.

kind is the project's pinned build (hack/versions.env). There is no cluster autoscaler on kind:
the node count is fixed, so only the HPA's part of the story can be seen there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import yaml
from kubernetes import utils

from tooling import paths
from tooling.errors import UserError
from tooling.kube import api_client

COMMON_LABELS = {"k8s-app": "metrics-server"}  # its kustomization.yaml's commonLabels
METRICS_SERVER_IMAGE = "registry.k8s.io/metrics-server/metrics-server:{version}"
NO_CONTAINER_ENGINE = (
    "kind runs its nodes as containers, and {problem}: start Docker (or Podman with "
    "KIND_EXPERIMENTAL_PROVIDER=podman), or use --provider rehearsal, which needs neither"
)


def kind(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(paths.tool("kind")), *args], capture_output=True, text=True, check=False
    )


def container_engine_problem() -> str | None:
    """Why kind could not run its nodes here, or None when the engine answers."""
    engine = os.environ.get("KIND_EXPERIMENTAL_PROVIDER", "docker")
    if shutil.which(engine) is None:
        return f"there is no `{engine}` on PATH"
    try:
        info = subprocess.run(
            [engine, "info"], capture_output=True, text=True, timeout=30, check=False
        )
    except subprocess.TimeoutExpired:
        return f"`{engine} info` did not answer in 30 s"
    if info.returncode != 0:
        last = (info.stderr.strip().splitlines() or ["failed"])[-1]
        return f"`{engine} info` failed ({last})"
    return None


def create_kind_cluster(name: str, kubeconfig: Path, say: Callable[[str], None] = print) -> Path:
    """Creates the cluster (or reuses one of that name), writes its kubeconfig, and installs
    metrics-server so the HPA has CPU metrics."""
    problem = container_engine_problem()
    if problem:
        raise UserError(NO_CONTAINER_ENGINE.format(problem=problem))
    kubeconfig.parent.mkdir(parents=True, exist_ok=True)
    if name in kind("get", "clusters").stdout.split():
        say(f"kind: reusing cluster {name}")
        result = kind("export", "kubeconfig", f"--name={name}", f"--kubeconfig={kubeconfig}")
    else:
        say(f"kind: creating cluster {name} …")
        result = kind(
            "create", "cluster", f"--name={name}", f"--kubeconfig={kubeconfig}", "--wait=5m"
        )
    if result.returncode != 0:
        raise UserError(f"kind could not create cluster {name}: {result.stderr.strip()[-600:]}")
    install_metrics_server(kubeconfig)
    say(f"kind: ✓ cluster {name} with metrics-server; export KUBECONFIG={kubeconfig.resolve()}")
    return kubeconfig


def write_kind_kubeconfig(name: str, kubeconfig: Path) -> Path:
    """Writes the kubeconfig of a running kind cluster (`cluster credentials`)."""
    problem = container_engine_problem()
    if problem:
        raise UserError(NO_CONTAINER_ENGINE.format(problem=problem))
    if name not in kind("get", "clusters").stdout.split():
        raise UserError(
            f"no kind cluster {name} runs: create it with "
            "`resnet-serving cluster create --provider kind`"
        )
    kubeconfig.parent.mkdir(parents=True, exist_ok=True)
    result = kind("export", "kubeconfig", f"--name={name}", f"--kubeconfig={kubeconfig}")
    if result.returncode != 0:
        raise UserError(f"kind could not write {name}'s kubeconfig: {result.stderr.strip()[-600:]}")
    return kubeconfig


def metrics_server_objects(version: str) -> list[dict]:
    """metrics-server's own manifests (from its module), with what their kustomization's
    commonLabels adds (labels, selectors), the released image, and kind's self-signed kubelet
    certificates accepted."""
    folder = paths.tools_bin().parent / "metrics-server-manifests"
    objects = []
    for name in ("rbac.yaml", "service.yaml", "apiservice.yaml", "deployment.yaml"):
        for item in yaml.safe_load_all((folder / name).read_text()):
            if not item:
                continue
            item["metadata"].setdefault("labels", {}).update(COMMON_LABELS)
            if item["kind"] == "Service":
                item["spec"].setdefault("selector", {}).update(COMMON_LABELS)
            if item["kind"] == "Deployment":
                item["spec"].setdefault("selector", {}).setdefault("matchLabels", {})
                item["spec"]["selector"]["matchLabels"].update(COMMON_LABELS)
                template = item["spec"]["template"].setdefault("metadata", {})
                template.setdefault("labels", {}).update(COMMON_LABELS)
                container = item["spec"]["template"]["spec"]["containers"][0]
                container["image"] = METRICS_SERVER_IMAGE.format(version=version)
                container["args"].append("--kubelet-insecure-tls")
            objects.append(item)
    return objects


def install_metrics_server(kubeconfig: Path) -> None:
    api = api_client(kubeconfig)
    version = paths.pinned_versions()["METRICS_SERVER_VERSION"]
    for item in metrics_server_objects(version):
        try:
            utils.create_from_dict(api, item, namespace=item["metadata"].get("namespace"))
        except utils.FailToCreateError as error:
            if not all(getattr(e, "status", None) == 409 for e in error.api_exceptions):
                raise


def delete_kind_cluster(name: str, say: Callable[[str], None] = print) -> None:
    result = kind("delete", "cluster", f"--name={name}")
    if result.returncode != 0:
        raise UserError(f"kind could not delete cluster {name}: {result.stderr.strip()[-600:]}")
    say(f"kind: ✓ cluster {name} deleted")
