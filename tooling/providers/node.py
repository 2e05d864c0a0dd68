"""A cluster whose pods run as containers on this machine (tooling.node): the rehearsal's real
control plane and one real node. `create` starts tooling.node.daemon, which keeps it running,
and follows its log until the node is ready; `delete` stops the daemon, which stops every
process and removes every mount, link and cgroup it made (and cleans up itself if the daemon
was killed). The story runs on it like on kind, with the charts' ci/node-values.yaml: the
local images, the model from the node's model store, real Locust pods. No node autoscaler.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from tooling import paths, releases
from tooling.console import Say
from tooling.errors import UserError
from tooling.node import daemon
from tooling.node.model_store import MODEL_STORE_URI
from tooling.node.node_cluster import NodeCluster, NodeClusterSpec
from tooling.providers.base import RunSpec
from tooling.providers.kind_and_gke import tear_down
from tooling.rehearsal.cluster import kwokctl, running_clusters
from tooling.runs.existing_cluster import existing_cluster_target
from tooling.runs.locust_load import LocustSettings
from tooling.runs.target import StoryTarget
from tooling.waiting import WaitTimeout, wait_until_ready

START_TIMEOUT_SECONDS = 900.0  # first start: the model's export and the images' import
STOP_TIMEOUT_SECONDS = 180.0
NODE_VALUES = {
    chart: paths.CHARTS_DIR / chart / "ci" / "node-values.yaml"
    for chart in ("resnet-serving", "locust")
}


def follow(name: str, offset: int, say: Say) -> tuple[int, list[str]]:
    """The daemon's log lines after OFFSET said, with the new offset and the lines."""
    log = daemon.log_file(name)
    if not log.is_file():
        return offset, []
    with log.open("rb") as handle:
        handle.seek(offset)
        text = handle.read()
    complete = text[: text.rfind(b"\n") + 1]
    lines = complete.decode(errors="replace").splitlines()
    for line in lines:
        if line and line != daemon.READY:
            say(line)
    return offset + len(complete), lines


class NodeProvider:
    name = "node"

    def create(self, cluster: NodeClusterSpec, say: Say) -> Path:
        if os.geteuid() != 0:
            raise UserError("the node provider runs containers: run it as root")
        if daemon.running_pid(cluster.name) is not None:
            say(f"node: reusing the running cluster {cluster.name}")
            return self.credentials(cluster, say)
        log = daemon.log_file(cluster.name)
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_bytes(b"")
        cluster.kubeconfig.parent.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "tooling.node.daemon", f"--name={cluster.name}"]
        argv += [f"--kubeconfig={cluster.kubeconfig.resolve()}"]
        argv += [f"--profile={cluster.profile.name}"]
        with log.open("ab") as handle:
            process = subprocess.Popen(
                argv,
                stdout=handle,
                stderr=subprocess.STDOUT,
                cwd=paths.REPO_ROOT,
                start_new_session=True,
            )
        say(f"node: starting {cluster.name} (log: {log}) …")
        offset = 0

        def started() -> bool:
            """The daemon's new lines said; its READY line, or a UserError for its FAILED one."""
            nonlocal offset
            offset, lines = follow(cluster.name, offset, say)
            if daemon.READY in lines:
                return True
            failed = [line for line in lines if line.startswith(daemon.FAILED)]
            if failed:
                process.wait()  # it stops what it started, then exits
                reason = failed[0].removeprefix(daemon.FAILED).strip()
                raise UserError(f"the node cluster {cluster.name} did not start: {reason} ({log})")
            return False

        try:
            wait_until_ready(
                f"the node cluster {cluster.name}",
                "it to be ready",
                started,
                running=lambda: process.poll() is None,
                log=log,
                timeout=START_TIMEOUT_SECONDS,
                period=0.5,
            )
        except WaitTimeout:
            self.delete(cluster, say)
            raise
        return cluster.kubeconfig

    def credentials(self, cluster: NodeClusterSpec, say: Say) -> Path:
        if daemon.running_pid(cluster.name) is None or cluster.name not in running_clusters():
            raise UserError(
                f"no node cluster {cluster.name} runs: start one with "
                "`resnet-serving cluster create --provider node`"
            )
        cluster.kubeconfig.parent.mkdir(parents=True, exist_ok=True)
        cluster.kubeconfig.write_text(kwokctl("get", "kubeconfig", f"--name={cluster.name}").stdout)
        return cluster.kubeconfig

    def delete(self, cluster: NodeClusterSpec, say: Say) -> None:
        pid = daemon.running_pid(cluster.name)
        if pid is not None:
            offset = daemon.log_file(cluster.name).stat().st_size
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
            while daemon.running_pid(cluster.name) is not None and time.monotonic() < deadline:
                offset, _ = follow(cluster.name, offset, say)
                time.sleep(0.5)
            follow(cluster.name, offset, say)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        # Whatever a killed daemon left (and nothing if it stopped cleanly).
        leftover = NodeCluster(cluster, say)
        leftover.stop()
        left = leftover.leftovers()
        if left:
            raise UserError(
                f"the node cluster {cluster.name} left {len(left)} things behind: "
                f"{'; '.join(left[:5])}"
            )
        shutil.rmtree(daemon.daemon_dir(cluster.name), ignore_errors=True)  # its pid and log
        say(f"cluster: ✓ {cluster.name} deleted")

    def story_target(
        self, cluster: NodeClusterSpec, run: RunSpec, say: Say
    ) -> contextlib.AbstractContextManager[StoryTarget]:
        return self._story_target(cluster, run, say)

    @contextlib.contextmanager
    def _story_target(
        self, cluster: NodeClusterSpec, run: RunSpec, say: Say
    ) -> Iterator[StoryTarget]:
        """The cluster created (or reused) as the story's target; deleted afterwards when
        `run.down`."""
        settings = run.load.locust_settings()  # a bad shape fails before the cluster is made
        kubeconfig = self.create(cluster, say)
        try:
            yield node_story_target(kubeconfig, run, settings, say)
        finally:
            if run.down:
                tear_down(self, cluster, run, say)


def node_locust_settings(settings: LocustSettings) -> LocustSettings:
    """The Locust chart's run with the node values (the local image) under its own."""
    values = tuple(releases.values_from_files(NODE_VALUES["locust"]))
    return dataclasses.replace(settings, chart_values=values)


def node_story_target(
    kubeconfig: Path, run: RunSpec, settings: LocustSettings, say: Say
) -> StoryTarget:
    """A running node cluster as the story's target: the server with the node values after
    the run's values files, the model from the node's model store unless --model-uri."""
    return existing_cluster_target(
        kubeconfig,
        "node",
        run.model_uri or MODEL_STORE_URI,
        node_locust_settings(settings),
        say,
        server_values=tuple(releases.values_from_files(NODE_VALUES["resnet-serving"])),
    )
