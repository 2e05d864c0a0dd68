"""The real node's groundwork (`make setup-node`, docs/node.md): the OCI packer of the local
images, containerd's config, and, where the node is installed, containerd running the local
images and leaving nothing behind.

The packer and config tests are fast. The runtime tests need root and `make setup-node`
(`make test` has both) and are slow: containerd on its own, and the shared node cluster's
real node running a pod."""

from __future__ import annotations

import gzip
import hashlib
import io
import ipaddress
import json
import os
import subprocess
import tarfile
import tomllib
from pathlib import Path

import pytest
from conftest import host_network

from tooling import paths
from tooling.node import containerd, oci_image
from tooling.waiting import wait_for, wait_until_ready

ROOT = Path(__file__).resolve().parent.parent


def _blob(layout: dict[str, bytes], digest: str) -> bytes:
    return layout[f"blobs/sha256/{digest.split(':', 1)[1]}"]


def _read_archive(archive: Path) -> dict[str, bytes]:
    with tarfile.open(archive) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def _tiny_rootfs(tmp_path: Path) -> Path:
    rootfs = tmp_path / "rootfs"
    (rootfs / "bin").mkdir(parents=True)
    (rootfs / "bin" / "hello").write_text("#!/bin/sh\necho hello\n")
    (rootfs / "bin" / "hello").chmod(0o755)
    (rootfs / "etc").mkdir()
    (rootfs / "etc" / "passwd").write_text("root:x:0:0::/:/bin/sh\n")
    os.symlink("hello", rootfs / "bin" / "hi")
    return rootfs


def test_packed_archive_is_an_oci_layout_naming_the_image(tmp_path):
    archive = tmp_path / "image.tar"
    config = oci_image.ImageConfig(entrypoint=["/bin/hello"], user="1000:1000", workdir="/home")
    digest = oci_image.pack(_tiny_rootfs(tmp_path), archive, ["resnet-serving/x:1.0"], config)
    layout = _read_archive(archive)
    assert json.loads(layout["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads(layout["index.json"])
    (entry,) = index["manifests"]
    assert entry["digest"] == digest
    assert entry["annotations"]["io.containerd.image.name"] == "docker.io/resnet-serving/x:1.0"
    assert entry["annotations"]["org.opencontainers.image.ref.name"] == "1.0"
    manifest_bytes = _blob(layout, digest)
    assert f"sha256:{hashlib.sha256(manifest_bytes).hexdigest()}" == digest
    manifest = json.loads(manifest_bytes)
    (layer,) = manifest["layers"]
    compressed = _blob(layout, layer["digest"])
    assert layer["size"] == len(compressed)
    assert f"sha256:{hashlib.sha256(compressed).hexdigest()}" == layer["digest"]
    image = json.loads(_blob(layout, manifest["config"]["digest"]))
    plain = gzip.decompress(compressed)
    assert image["rootfs"]["diff_ids"] == [f"sha256:{hashlib.sha256(plain).hexdigest()}"]
    assert image["config"]["Entrypoint"] == ["/bin/hello"]
    assert image["config"]["User"] == "1000:1000"
    assert image["config"]["WorkingDir"] == "/home"
    with tarfile.open(fileobj=io.BytesIO(plain)) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert sorted(members) == ["bin", "bin/hello", "bin/hi", "etc", "etc/passwd"]
    assert members["bin/hello"].mode & 0o111
    assert members["bin/hi"].issym() and members["bin/hi"].linkname == "hello"
    assert {m.mtime for m in members.values()} == {0}


def test_the_same_inputs_pack_to_the_same_bytes(tmp_path):
    rootfs = _tiny_rootfs(tmp_path)
    config = oci_image.ImageConfig(entrypoint=["/bin/hello"])
    first, second = tmp_path / "a.tar", tmp_path / "b.tar"
    oci_image.pack(rootfs, first, ["x:1"], config)
    os.utime(rootfs / "bin" / "hello", (1_000_000, 1_000_000))  # times are not inputs
    oci_image.pack(rootfs, second, ["x:1"], config)
    assert first.read_bytes() == second.read_bytes()


def test_a_rootfs_tar_becomes_the_layer_unchanged(tmp_path):
    source = tmp_path / "rootfs.tar"
    with tarfile.open(source, "w") as tar:
        tar.add(_tiny_rootfs(tmp_path), arcname=".")
    archive = tmp_path / "image.tar"
    config = oci_image.ImageConfig(entrypoint=["/bin/hello"])
    digest = oci_image.pack(source, archive, ["a/b:c", "a/b:d"], config)
    layout = _read_archive(archive)
    names = [
        m["annotations"]["io.containerd.image.name"]
        for m in json.loads(layout["index.json"])["manifests"]
    ]
    assert names == ["docker.io/a/b:c", "docker.io/a/b:d"]
    (layer,) = json.loads(_blob(layout, digest))["layers"]
    assert gzip.decompress(_blob(layout, layer["digest"])) == source.read_bytes()


@pytest.mark.parametrize(
    ("name", "qualified"),
    [
        ("resnet-serving/pause:3.10", "docker.io/resnet-serving/pause:3.10"),
        ("busybox", "docker.io/library/busybox:latest"),
        ("registry.k8s.io/pause:3.10", "registry.k8s.io/pause:3.10"),
        ("localhost:5000/x", "localhost:5000/x:latest"),
        ("localhost/x:1", "localhost/x:1"),
    ],
)
def test_image_names_are_qualified_as_containerd_and_the_kubelet_look_them_up(name, qualified):
    assert oci_image.qualified(name) == qualified


def test_containerd_config_keeps_to_its_own_paths(tmp_path, monkeypatch):
    monkeypatch.setenv("RESNET_SERVING_CACHE", str(tmp_path / "cache"))
    where = containerd.ContainerdPaths("n1")
    config = tomllib.loads(containerd.config_toml(where, Path("/t/bin"), Path("/t/cni-bin")))
    plugins = config["plugins"]
    assert config["version"] == 4
    assert config["imports"] == []  # never the host's /etc/containerd/conf.d
    assert config["root"] == str(tmp_path / "cache" / "node" / "n1" / "containerd")
    assert config["state"] == "/run/resnet-serving-node/n1/containerd"
    assert (
        plugins["io.containerd.server.v1.grpc"]["address"]
        == "/run/resnet-serving-node/n1/containerd.sock"
    )
    assert plugins["io.containerd.internal.v1.opt"]["path"].startswith(config["root"])
    runc = plugins["io.containerd.cri.v1.runtime"]["containerd"]["runtimes"]["runc"]["options"]
    assert runc == {
        "BinaryName": "/t/bin/runc",
        "Root": "/run/resnet-serving-node/n1/runc",
        "SystemdCgroup": False,
    }
    cni = plugins["io.containerd.cri.v1.runtime"]["cni"]
    assert cni == {"bin_dirs": ["/t/cni-bin"], "conf_dir": "/run/resnet-serving-node/n1/cni/net.d"}
    sandbox = plugins["io.containerd.cri.v1.images"]["pinned_images"]["sandbox"]
    assert sandbox == containerd.SANDBOX_IMAGE
    assert "io.containerd.nri.v1.nri" in config["disabled_plugins"]
    # root here lacks CAP_SYS_RESOURCE: the sandbox's -998 would fail runc's init
    assert plugins["io.containerd.cri.v1.runtime"]["restrict_oom_score_adj"] is True
    # pods' network namespaces where stop() looks for mounts, not the host's /run/netns
    assert plugins["io.containerd.cri.v1.runtime"]["netns_mounts_under_state_dir"] is True


@pytest.mark.parametrize("script", ["hack/install-node.sh", "hack/images/build-images.sh"])
def test_setup_scripts_parse(script):
    result = subprocess.run(["bash", "-n", str(ROOT / script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_node_versions_are_pinned():
    versions = paths.pinned_versions()
    for name in ("CONTAINERD_VERSION", "RUNC_VERSION", "CNI_PLUGINS_VERSION", "KUBERNETES_VERSION"):
        assert versions.get(name, "").startswith("v"), name
        assert f"${name}" in (ROOT / "hack" / "install-node.sh").read_text(), name


# --- the runtime, where the node is installed ------------------------------------------------

IMAGES = ROOT / ".tools" / "images"


def _runtime_skip_reason() -> str | None:
    """Why the runtime tests cannot run here (not root, the node not installed), or None."""
    from conftest import node_cluster_skip_reason

    return node_cluster_skip_reason()


runtime = pytest.mark.skipif(_runtime_skip_reason() is not None, reason=str(_runtime_skip_reason()))


@pytest.fixture
def node_containerd():
    before = host_network()
    runtime_ = containerd.Containerd(f"test-{os.getpid()}")
    try:
        runtime_.start()
        yield runtime_
    finally:
        runtime_.stop()
        runtime_.forget()
    assert runtime_.leftovers() == []
    assert host_network() == before


def _run(runtime_: containerd.Containerd, image: str, *command: str, timeout: float = 120):
    return runtime_.ctr(
        "run",
        "--rm",
        *runtime_.runc_flags(),
        image,
        f"t{os.getpid()}",
        *command,
        check=False,
        timeout=timeout,
    )


@pytest.mark.slow
@runtime
def test_containerd_runs_the_pause_image_which_stops_on_sigterm(node_containerd):
    node_containerd.import_image(IMAGES / "pause.tar")
    version = _run(node_containerd, containerd.SANDBOX_IMAGE, "/pause", "-v")
    assert version.returncode == 0, version.stderr
    assert "pause (resnet-serving)" in version.stdout
    command = [
        str(node_containerd.tools / "ctr"),
        "--address",
        str(node_containerd.where.socket),
        "--namespace",
        containerd.NAMESPACE,
        "run",
        "--rm",
        *node_containerd.runc_flags(),
        containerd.SANDBOX_IMAGE,
        "sleeper",
    ]

    def sleeper_running() -> bool:
        tasks = node_containerd.ctr("tasks", "list").stdout
        return "sleeper" in tasks and "RUNNING" in tasks

    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as run:
        wait_until_ready(
            "ctr run",
            "the pause task to be RUNNING",
            sleeper_running,
            running=lambda: run.poll() is None,
            log=None,  # its output is read below
            timeout=15,  # as the 50 tries (a `ctr tasks list` and 0.2 s each) it replaced
        )
        assert run.poll() is None, "pause exited before its signal"
        node_containerd.ctr("tasks", "kill", "--signal", "SIGTERM", "sleeper")
        assert run.wait(30) == 0
        assert "shutting down, got signal terminated" in run.stderr.read()


@pytest.mark.slow
@runtime
@pytest.mark.parametrize(
    ("image", "command", "expected"),
    [
        (
            "fetcher",
            ["sh", "-c", "id -un; command -v curl tar mktemp; tar --help 2>&1 | head -1"],
            ["curl_user", "/usr/bin/curl", "BusyBox"],
        ),
        (
            "locust",
            ["sh", "-c", "id; pwd; locust --version; python3 -c 'import grpc'"],
            ["uid=1000(locust)", "/home/locust", "locust 2.47.0"],
        ),
    ],
)
def test_the_local_images_run_with_their_users_and_commands(
    node_containerd, image, command, expected
):
    archive = IMAGES / f"{image}.tar"
    if not archive.exists():
        pytest.skip(f"{archive} missing: run `make setup-node`")
    node_containerd.import_image(archive)
    ref = oci_image.qualified((IMAGES / f"{image}.ref").read_text().strip())
    result = _run(node_containerd, ref, *command)
    assert result.returncode == 0, result.stderr
    for text in expected:
        assert text in result.stdout


@pytest.mark.slow
def test_the_real_node_runs_a_pause_pod_in_the_pod_network(node_cluster):
    """On the shared node cluster (its teardown checks that nothing is left behind): the node
    is containerd's, offers the machine's cores less what is reserved, and runs a pod's
    sandbox and container for real, at an address of the pod network."""
    from conftest import namespace_in
    from kubernetes import client

    from tooling.kube import api_client
    from tooling.node.node import POD_SUBNET, NodeSize
    from tooling.quantities import quantity

    api = api_client(node_cluster.kubeconfig)
    core = client.CoreV1Api(api)
    described = core.read_node(node_cluster.name)
    version = paths.pinned_versions()["CONTAINERD_VERSION"].removeprefix("v")
    assert described.status.node_info.container_runtime_version == f"containerd://{version}"
    size = NodeSize()
    reserved = quantity(size.system_reserved_cpu) + quantity(size.kube_reserved_cpu)
    assert quantity(described.status.allocatable["cpu"]) == pytest.approx(os.cpu_count() - reserved)
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "pause"},
        "spec": {
            "automountServiceAccountToken": False,
            "nodeName": node_cluster.name,
            "containers": [
                {"name": "pause", "image": "resnet-serving/pause:3.10", "imagePullPolicy": "Never"}
            ],
        },
    }
    with namespace_in(api, "node-pause", restricted=False) as namespace:
        core.create_namespaced_pod(namespace, pod)

        def running() -> bool:
            status = core.read_namespaced_pod("pause", namespace).status
            return status.phase == "Running" and bool(status.pod_ip)

        wait_for(running, 60, "the pause pod Running with an address")
        status = core.read_namespaced_pod("pause", namespace).status
        assert ipaddress.ip_address(status.pod_ip) in ipaddress.ip_network(POD_SUBNET)
        container = status.container_statuses[0].container_id.removeprefix("containerd://")
        tasks = containerd.Containerd(node_cluster.name).ctr("tasks", "list").stdout
        running_tasks = [line.split()[0] for line in tasks.splitlines() if "RUNNING" in line]
        assert container in running_tasks, tasks
        core.delete_namespaced_pod("pause", namespace, grace_period_seconds=1)
