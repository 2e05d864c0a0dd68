"""The Locust chart's master and workers as real processes on this machine.

Their command lines and environment are read from charts/locust rendered with the run's values
(helm, through pyhelm3): the Locust arguments the master Job's shell wrapper runs
(`--autostart --autoquit=0`, the expected workers, the run time, the results), the worker
Job's arguments and parallelism, and both containers' environment (the shape and its
variables). Only what points inside a pod is mapped to this machine: the mounted locustfile,
images and shape file, the results folder, the master's address and ports, and the Service's
host (the replica fleet's URL).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from pyhelm3 import Client

from tooling import paths
from tooling.loadgen import LOADGEN_DIR, LOCUSTFILE
from tooling.loadgen.run import free_port
from tooling.names import APP_NAMESPACE, LOAD_RELEASE, SERVER_URL

CHART = paths.CHARTS_DIR / "locust"
RESULTS = "/results"
CONTAINER_PATHS = {  # where the chart mounts them → where they are here
    "/mnt/locust/code/locustfile.py": str(LOCUSTFILE),
    "/mnt/locust/images": str(paths.IMAGES_DIR),
    "/mnt/locust/shape/shape.csv": "{shape_file}",
}
CHART_PORTS = {"--master-bind-port": "master", "--web-port": "web", "--master-port": "master"}


@dataclass(frozen=True)
class LocustCommands:
    master: list[str]
    worker: list[str]
    workers: int
    environment: dict[str, str]  # what both containers get
    web_port: int


def render(values: dict) -> list[dict]:
    """charts/locust as helm renders it with these values."""

    async def go() -> list[dict]:
        client = Client(executable=str(paths.tool("helm")))
        chart = await client.get_chart(CHART)
        resources = await client.template_resources(
            chart, LOAD_RELEASE, values, namespace=APP_NAMESPACE
        )
        return list(resources)

    return asyncio.run(go())


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


def localized(
    words: list[str], ports: dict[str, int], results: Path, shape_file: Path
) -> list[str]:
    """Arguments with the pod's paths, ports and master address mapped to this machine."""
    out = []
    for word in words:
        for inside, here in CONTAINER_PATHS.items():
            word = word.replace(inside, here.format(shape_file=shape_file))
        word = word.replace(RESULTS, str(results))
        flag, equals, _ = word.partition("=")
        if equals and flag in CHART_PORTS:
            word = f"{flag}={ports[CHART_PORTS[flag]]}"
        if equals and flag == "--master-host":
            word = f"{flag}=127.0.0.1"
        out.append(word)
    return out


def commands(values: dict, host: str, results: Path) -> LocustCommands:
    """The master's and workers' command lines from the rendered chart, for this machine."""
    objects = render(values)
    _, master = container(objects, "Job", "master")
    workers, worker = container(objects, "Job", "worker")
    if "--autostart" not in master_arguments(master):
        raise LookupError("the rehearsal runs the chart's headless master (loadtest.headless)")
    shape_file = results / "shape.csv"
    if values.get("loadtest", {}).get("shapeFile"):
        results.mkdir(parents=True, exist_ok=True)
        shape_file.write_text(values["loadtest"]["shapeFile"])
    ports = {"master": free_port(), "web": free_port()}
    environment = {item["name"]: str(item.get("value", "")) for item in master.get("env", [])}
    environment = {
        name: localized([value], ports, results, shape_file)[0]
        for name, value in environment.items()
    }
    environment["LOCUST_HOST"] = host
    environment.pop("HOME", None)  # /tmp in the pod; this machine's own here
    python_locust = [sys.executable, "-m", "locust"]
    return LocustCommands(
        master=[*python_locust, *localized(master_arguments(master), ports, results, shape_file)],
        worker=[*python_locust, *localized(worker["args"], ports, results, shape_file)],
        workers=int(workers["spec"].get("parallelism", 1)),
        environment=environment,
        web_port=ports["web"],
    )


def start(locust: LocustCommands, results: Path) -> list[subprocess.Popen]:
    """The master, then its workers; their output in results/locust.log."""
    results.mkdir(parents=True, exist_ok=True)
    environment = {**os.environ, **locust.environment, "PYTHONPATH": str(LOADGEN_DIR)}
    with open(results / "locust.log", "ab") as log:
        master = subprocess.Popen(locust.master, env=environment, stdout=log, stderr=log)
        workers = [
            subprocess.Popen(locust.worker, env=environment, stdout=log, stderr=log)
            for _ in range(locust.workers)
        ]
    return [master, *workers]


def chart_host_is_the_service(values: dict) -> bool:
    """The chart's values name the model Service (what the fleet stands for)."""
    return values.get("loadtest", {}).get("host") == SERVER_URL
