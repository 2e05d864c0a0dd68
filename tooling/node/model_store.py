"""The node cluster's model store: the packaged ResNet101 tarball served over https from inside
the node's network namespace, with a certificate the cluster's CA signs, so pods fetch it with
the chart's `model.source.caBundle` set to `kube-root-ca.crt`.

- `ModelStore`: `model_store_server` as a process in the node's netns, on NODE_ADDRESS:PORT,
  with a server certificate for the Service's names that the CA (kwokctl's pki/ca.crt and
  ca.key) signs (`tooling.certificates`).
- `model_store_objects()`: its Namespace, a selectorless Service and the EndpointSlice to the
  node's address, so kube-proxy takes pods to MODEL_STORE_URI.

The tarball it serves: `tooling.node.model_export`.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from tooling import certificates, paths
from tooling.errors import UserError
from tooling.node import containerd
from tooling.node.model_store_server import READY_LINE
from tooling.node.processes import processes_naming, stop_processes
from tooling.waiting import wait_until_ready

NAMESPACE = "resnet-serving-system"
SERVICE = "model-store"
PORT = 8443
ADDRESS = "10.233.0.2"  # the node's address (tooling.node.node.NODE_ADDRESS)
URL_PATH = "/resnet101.tar.gz"
DNS_NAMES = (
    f"{SERVICE}.{NAMESPACE}.svc.cluster.local",
    f"{SERVICE}.{NAMESPACE}.svc",
    f"{SERVICE}.{NAMESPACE}",
    SERVICE,
)
MODEL_STORE_URI = f"https://{DNS_NAMES[0]}:{PORT}{URL_PATH}"
START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 10.0


class ModelStore:
    """The model store's server process for cluster NAME, in the network namespace `netns`
    (None: this one), serving `tarball` at URL_PATH on `address`:`port` (0: any free port,
    `port` then says which once started). Its certificate, key and log live in `run_dir`,
    which `stop` removes."""

    def __init__(
        self,
        name: str,
        netns: Path | None,
        ca_cert: Path,
        ca_key: Path,
        tarball: Path,
        run_dir: Path,
        address: str = ADDRESS,
        port: int = PORT,
    ) -> None:
        self.name = name
        self.netns = netns
        self.ca_cert = ca_cert
        self.ca_key = ca_key
        self.tarball = tarball
        self.run_dir = run_dir
        self.address = address
        self.port = port
        self.process: subprocess.Popen | None = None

    @property
    def log(self) -> Path:
        return self.run_dir / "model-store.log"

    @property
    def cert(self) -> Path:
        return self.run_dir / "server.crt"

    @property
    def key(self) -> Path:
        return self.run_dir / "server.key"

    def command(self) -> list[str]:
        return [
            *containerd.in_netns(self.netns),
            sys.executable,
            "-m",
            "tooling.node.model_store_server",
            f"--cert={self.cert}",
            f"--key={self.key}",
            f"--file={self.tarball}",
            f"--path={URL_PATH}",
            f"--address={self.address}",
            f"--port={self.port}",
        ]

    def start(self) -> None:
        """Issues the certificate and starts the server; returns once it listens."""
        if not self.tarball.is_file():
            raise UserError(f"model store: no tarball {self.tarball}")
        self.stop()  # a server an earlier run of this store left
        self.run_dir.mkdir(parents=True, exist_ok=True)
        certificates.issue_certificate(
            self.ca_cert, self.ca_key, self.cert, self.key, DNS_NAMES, ips=(self.address,)
        )
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                self.command(),
                cwd=paths.REPO_ROOT,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        process = self.process

        def listening() -> bool:
            ready = re.search(rf"{READY_LINE} .* at https://[^ ]+:(\d+)/", self.log.read_text())
            if ready:
                self.port = int(ready.group(1))
            return ready is not None

        try:
            wait_until_ready(
                f"model store {self.name}",
                f"it to listen on {self.address}:{self.port}",
                listening,
                running=lambda: process.poll() is None,
                log=self.log,
                timeout=START_TIMEOUT_SECONDS,
                period=0.1,
            )
        except UserError:
            self.stop()
            raise

    def stop(self) -> None:
        """Ends the server (SIGTERM, then SIGKILL), also one another process started (`cluster
        create` and `cluster delete` are two commands), and removes `run_dir`."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(STOP_TIMEOUT_SECONDS)
        self.process = None
        stop_processes(self.server_pids(), STOP_TIMEOUT_SECONDS)
        shutil.rmtree(self.run_dir, ignore_errors=True)

    def server_pids(self) -> list[int]:
        """Running processes of this store's server: the module, named with this run folder."""
        return [
            pid
            for pid, command in processes_naming(f"--cert={self.run_dir}")
            if "tooling.node.model_store_server" in command.split()
        ]

    def leftovers(self) -> list[str]:
        """What a stopped store would have left: a server process, its run folder."""
        found = [f"model store process {pid}" for pid in self.server_pids()]
        if self.run_dir.exists():
            found.append(f"folder {self.run_dir}")
        return found

    def __enter__(self) -> ModelStore:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


def model_store_objects(address: str = ADDRESS, port: int = PORT) -> list[dict]:
    """The Namespace, the selectorless Service and its EndpointSlice to the store on the node:
    kube-proxy takes MODEL_STORE_URI's Service address to `address`:`port`."""
    labels = {"app.kubernetes.io/name": SERVICE, "app.kubernetes.io/part-of": "resnet-serving"}
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": SERVICE, "namespace": NAMESPACE, "labels": labels},
            "spec": {
                "type": "ClusterIP",
                "ports": [{"name": "https", "port": PORT, "targetPort": port, "protocol": "TCP"}],
            },
        },
        {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": f"{SERVICE}-node",
                "namespace": NAMESPACE,
                "labels": {
                    **labels,
                    "kubernetes.io/service-name": SERVICE,
                    "endpointslice.kubernetes.io/managed-by": "resnet-serving",
                },
            },
            "addressType": "IPv4",
            "endpoints": [{"addresses": [address], "conditions": {"ready": True}}],
            "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
        },
    ]
