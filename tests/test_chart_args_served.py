"""The model server chart's own arguments, run for real: for each ci values file, the rendered
ConfigMap's files are written where the `tensorflow-serving` container's arguments point, and
`serve-local` is started with exactly those arguments (the flags TF Serving itself would get;
only the paths inside the pod and the two ports are mapped to this machine). It must load the
model and answer the readiness probe's path. A TF Serving flag it does not implement is
refused with a clear message."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import RESNET_CHART, one_of, render

from tooling import cli
from tooling.loadgen.run import free_port
from tooling.serving import process

CI_VALUES = sorted((RESNET_CHART / "ci").glob("*-values.yaml"))
CONFIG_DIR = "/etc/tfserving"
MODELS_DIR = "/models"


def server_container(objects: tuple[dict, ...]) -> dict:
    deployment = one_of(objects, "Deployment", "resnet-serving")
    (container,) = [
        c
        for c in deployment["spec"]["template"]["spec"]["containers"]
        if c["name"] == "tensorflow-serving"
    ]
    return container


def mapped(args: list[str], here: Path, ports: dict[str, int]) -> list[str]:
    """The container's arguments with the pod's paths and ports mapped to this machine."""
    inside = {CONFIG_DIR: here / "etc", MODELS_DIR: here / "models"}
    out = []
    for arg in args:
        flag, equals, value = arg.partition("=")
        if flag == "--port":
            value = str(ports["grpc"])
        elif flag == "--rest_api_port":
            value = str(ports["http"])
        for pod_path, local in inside.items():
            if value.startswith(pod_path + "/"):
                value = str(local) + value.removeprefix(pod_path)
        out.append(f"{flag}{equals}{value}")
    return out


def server_config(objects: tuple[dict, ...]) -> dict:
    return next(
        item for item in objects if item["kind"] == "ConfigMap" and "models.config" in item["data"]
    )


def distinct_server_setups() -> dict[str, Path]:
    """One ci values file for each distinct server setup (its arguments and config files),
    named by every values file that renders it: a server started for one of them has been
    started for all (identical flags and files), so each setup starts once."""
    groups: dict[str, list[Path]] = {}
    for values in CI_VALUES:
        objects = render(RESNET_CHART, values)
        setup = repr((server_container(objects)["args"], server_config(objects)["data"]))
        groups.setdefault(setup, []).append(values)
    return {
        "+".join(v.name.removesuffix("-values.yaml") for v in group): group[0]
        for group in groups.values()
    }


SERVER_SETUPS = distinct_server_setups()


@pytest.mark.parametrize("values", SERVER_SETUPS.values(), ids=SERVER_SETUPS.keys())
def test_serve_local_runs_the_charts_arguments_and_passes_its_readiness_probe(
    values, exported_model, tmp_path
):
    objects = render(RESNET_CHART, values)
    container = server_container(objects)
    config_map = server_config(objects)
    (tmp_path / "etc").mkdir()
    for name, text in config_map["data"].items():
        (tmp_path / "etc" / name).write_text(text.replace(MODELS_DIR, str(tmp_path / "models")))
    (tmp_path / "models").mkdir()
    for line in config_map["data"]["models.config"].splitlines():
        if "base_path" in line:  # the model, where the config says the init container put it
            base = line.split('"')[1].removeprefix(f"{MODELS_DIR}/")
            (tmp_path / "models" / base).symlink_to(exported_model)
    ports = {"grpc": free_port(), "http": free_port()}
    args = mapped(container["args"], tmp_path, ports)
    probe = container["readinessProbe"]["httpGet"]
    assert probe["port"] == "http"
    ready = f"http://127.0.0.1:{ports['http']}{probe['path']}"
    with process.serve_local_process(args, tmp_path, ready) as (server, _):
        assert server.poll() is None  # loaded the model, answered the readiness probe's path


@pytest.mark.parametrize(
    ("flag", "said"),
    [
        ("--rest_api_num_threads=8", "unknown option(s) --rest_api_num_threads=8"),
        ("--file_system_poll_wait_seconds=1", "never polls"),
    ],
)
def test_a_tf_serving_flag_serve_local_does_not_implement_is_refused(flag, said, capsys):
    assert cli.run(["serve-local", "--model_base_path", "/nowhere", flag]) == 2
    err = capsys.readouterr().err
    assert said in err and len(err.strip().splitlines()) == 1
