"""The Locust chart's master and workers as processes on this machine: the one launcher of
`load run` and of the rehearsal's real load.

Their command lines and environment are read from charts/locust rendered with the run's values
(helm, through pyhelm3): the Locust arguments the master Job's shell wrapper runs
(`--autostart --autoquit=0`, the expected workers, the run time, the results), the worker
Job's arguments and parallelism, both containers' environment (the shape and its variables)
and the shape file the ConfigMap mounts. `on_this_machine` is the one place what points inside
a pod is mapped here: the mounted locustfile, images and shape file, the results folder, the
master's address and ports (on loopback), and the host under test instead of the chart's.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tooling import paths
from tooling.errors import UserError, one_line
from tooling.loadgen import LOADGEN_DIR, LOCUSTFILE
from tooling.names import APP_NAMESPACE, LOAD_RELEASE

CHART = paths.CHARTS_DIR / "locust"
LOOPBACK = "127.0.0.1"
LOCUST = [sys.executable, "-m", "locust"]  # the pods' `locust`, from this Python
RESULTS = "/results"  # the master's results volume
SHAPE_FILE = "/mnt/locust/shape/shape.csv"
MOUNTED = {  # what the chart mounts → where it is here
    "/mnt/locust/code/locustfile.py": LOCUSTFILE,
    "/mnt/locust/images": paths.IMAGES_DIR,
}
MASTER_PORT_FLAGS = ("--master-bind-port", "--master-port")


@dataclass(frozen=True)
class PodCommands:
    """The chart's master and workers as it renders them: Locust's arguments inside the pods."""

    master: list[str]  # what the master's shell wrapper runs `locust` with
    worker: list[str]
    workers: int  # the worker Job's parallelism
    environment: dict[str, str]  # what both containers get
    shape_csv: str  # the mounted shape file ("" without `shape: file`)


@dataclass(frozen=True)
class LocalRun:
    """What the pods' paths and addresses are on this machine."""

    host: str  # the host under test (the chart's is the model Service)
    results: Path  # the results volume: Locust's CSV and HTML, and its log
    master_port: int  # where the master listens for its workers (loopback)
    web_port: int  # where the master's web API listens (live stats)
    web_host: str = LOOPBACK
    shape_file: Path | None = None  # None: the mounted shape file is written to results


@dataclass(frozen=True)
class LocustCommands:
    """The master's and workers' command lines on this machine."""

    master: list[str]
    worker: list[str]
    workers: int
    environment: dict[str, str]  # what both get (over this process's own)
    web_port: int


def render(values: dict) -> list[dict]:
    """charts/locust as helm renders it with these values; no helm says to run `make setup`."""
    from pyhelm3 import Client  # pydantic and all: only when a chart is rendered
    from pyhelm3.errors import Error as HelmError

    async def go() -> list[dict]:
        client = Client(executable=str(paths.tool("helm")))
        chart = await client.get_chart(CHART)
        resources = await client.template_resources(
            chart, LOAD_RELEASE, values, namespace=APP_NAMESPACE
        )
        return list(resources)

    try:
        return asyncio.run(go())
    except HelmError as error:  # values the chart's schema refuses
        raise UserError(f"helm could not render charts/locust: {one_line(error)}") from error


def container(objects: list[dict], kind: str, component: str) -> tuple[dict, dict]:
    """(the workload object, its first container) of the chart's master or workers."""
    for item in objects:
        labels = item["metadata"].get("labels", {})
        if item["kind"] == kind and labels.get("app.kubernetes.io/component") == component:
            return item, item["spec"]["template"]["spec"]["containers"][0]
    raise LookupError(f"charts/locust rendered no {kind} for the {component}")


def master_arguments(master: dict) -> list[str]:
    """The headless master's Locust arguments: `sh -c SCRIPT NAME ARGS…` runs `locust "$@"`."""
    script, _name, *words = master["args"]
    if 'locust "$@"' not in script:
        raise LookupError(f"the master's script does not run locust with its arguments: {script}")
    return words


def in_pods(values: dict) -> PodCommands:
    """The headless master's and workers' Locust arguments as the chart renders them."""
    objects = render(values)
    _, master = container(objects, "Job", "master")
    workers, worker = container(objects, "Job", "worker")
    arguments = master_arguments(master)
    if "--autostart" not in arguments:
        raise LookupError("only the chart's headless master runs here (loadtest.headless)")
    shape_csv = next(
        (
            item["data"]["shape.csv"]
            for item in objects
            if item["kind"] == "ConfigMap" and "shape.csv" in item.get("data", {})
        ),
        "",
    )
    return PodCommands(
        master=arguments,
        worker=list(worker["args"]),
        workers=int(workers["spec"].get("parallelism", 1)),
        environment={item["name"]: str(item.get("value", "")) for item in master.get("env", [])},
        shape_csv=shape_csv,
    )


def on_this_machine(pods: PodCommands, here: LocalRun) -> LocustCommands:
    """The pods' command lines with what points inside a pod mapped to this machine: the
    repo's locustfile and images, the shape file (`here.shape_file`, or the mounted one written
    to the results), the results folder, the master on loopback ports that its workers reach,
    its web API on `here.web_host`, and Locust's host the one under test."""
    shape_file = here.shape_file or here.results / "shape.csv"
    if pods.shape_csv and here.shape_file is None:
        here.results.mkdir(parents=True, exist_ok=True)
        shape_file.write_text(pods.shape_csv)
    mapped = {**MOUNTED, SHAPE_FILE: shape_file, RESULTS: here.results}
    # one pass, longest first: a path already mapped here is not mapped again
    inside = re.compile("|".join(re.escape(path) for path in sorted(mapped, key=len, reverse=True)))

    def local(word: str) -> str:
        word = inside.sub(lambda match: str(mapped[match.group()]), word)
        flag, equals, _ = word.partition("=")
        if equals and flag in MASTER_PORT_FLAGS:
            return f"{flag}={here.master_port}"
        if equals and flag == "--web-port":
            return f"{flag}={here.web_port}"
        if equals and flag == "--master-host":
            return f"{flag}={LOOPBACK}"
        return word

    environment = {name: local(value) for name, value in pods.environment.items()}
    environment["LOCUST_HOST"] = here.host
    environment.pop("HOME", None)  # /tmp in the pod; this machine's own here
    return LocustCommands(
        master=[
            *LOCUST,
            *map(local, pods.master),
            f"--web-host={here.web_host}",
            f"--master-bind-host={LOOPBACK}",
        ],
        worker=[*LOCUST, *map(local, pods.worker)],
        workers=pods.workers,
        environment=environment,
        web_port=here.web_port,
    )


def commands(values: dict, here: LocalRun) -> LocustCommands:
    """The chart's master and workers for these values, as command lines on this machine."""
    return on_this_machine(in_pods(values), here)


def start(locust: LocustCommands, results: Path, niceness: int = 0) -> list[subprocess.Popen]:
    """The master, then its workers (at `niceness`, 0 as usual); their output in
    results/locust.log."""
    results.mkdir(parents=True, exist_ok=True)
    environment = {**os.environ, **locust.environment, "PYTHONPATH": str(LOADGEN_DIR)}
    if "LOAD_SHAPE" not in locust.environment:  # fixed users, whatever this shell has set
        environment.pop("LOAD_SHAPE", None)
    nice = ["nice", "-n", str(niceness)] if niceness else []
    with open(results / "locust.log", "ab") as log:
        master = subprocess.Popen([*nice, *locust.master], env=environment, stdout=log, stderr=log)
        workers = [
            subprocess.Popen([*nice, *locust.worker], env=environment, stdout=log, stderr=log)
            for _ in range(locust.workers)
        ]
    return [master, *workers]
