"""TF Serving's command-line flags (tensorflow_model_server), so one command line serves both."""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from pathlib import Path

from tooling.errors import UserError
from tooling.model.package import version_dirs


def _bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes"):
        return True
    if text.lower() in ("0", "false", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def add_model_server_flags(parser: argparse.ArgumentParser) -> None:
    """The flags, with TF Serving's names and defaults (`--flag=value` or `--flag value`)."""
    add = parser.add_argument
    add("--port", type=int, default=8500, help="gRPC port (8500)")
    add(
        "--rest_api_port",
        type=int,
        default=0,
        help="REST port; 0 turns REST off (TF Serving's default)",
    )
    add("--model_name", default="default", help="name to serve the model under")
    add("--model_base_path", type=Path, help="directory holding numeric version directories")
    add("--model_config_file", type=Path, help="ModelServerConfig text proto (model_config_list)")
    add("--enable_batching", type=_bool, nargs="?", const=True, default=False)
    add("--batching_parameters_file", type=Path, help="BatchingParameters text proto")
    add("--tensorflow_intra_op_parallelism", type=int, default=0)
    add("--tensorflow_inter_op_parallelism", type=int, default=0)
    add(
        "--monitoring_config_file",
        type=Path,
        help="MonitoringConfig text proto (prometheus_config)",
    )
    add("--enable_model_warmup", type=_bool, nargs="?", const=True, default=True)
    # serve-local loads each model's versions once and never polls: it honours these at 0 (the
    # chart passes --file_system_poll_wait_seconds=0) and refuses any other value.
    for never_polled in NEVER_POLLED:
        add(never_polled, type=int, default=None, help=f"{never_polled}: 0 only (no polling)")


# TF Serving flags serve-local takes; any other is refused (cli: unknown option).
NEVER_POLLED = ("--file_system_poll_wait_seconds", "--model_config_file_poll_wait_seconds")
HONOURED = (
    "--port",
    "--rest_api_port",
    "--model_name",
    "--model_base_path",
    "--model_config_file",
    "--enable_batching",
    "--batching_parameters_file",
    "--tensorflow_intra_op_parallelism",
    "--tensorflow_inter_op_parallelism",
    "--monitoring_config_file",
    "--enable_model_warmup",
    *NEVER_POLLED,
)


def refuse_what_is_not_served(args: argparse.Namespace) -> None:
    """A polling period other than 0 asks for what serve-local does not do."""
    for flag in NEVER_POLLED:
        value = getattr(args, flag.removeprefix("--"))
        if value not in (None, 0):
            raise UserError(
                f"{flag}={value}: serve-local loads the model's versions once and never polls "
                f"for new ones; use {flag}=0 (what the chart passes), or TF Serving itself"
            )


FILE_FLAGS = ("--model_config_file", "--batching_parameters_file", "--monitoring_config_file")


def check_model_server_flags(args: argparse.Namespace) -> None:
    """What can be checked before TensorFlow is imported: the files the flags name, the ports,
    a model to serve, and --model_base_path's version directories."""
    for flag in FILE_FLAGS:
        path = getattr(args, flag.removeprefix("--"))
        if path is not None and not path.is_file():
            raise UserError(f"{flag} {path}: no such file; give the text proto's path")
    for flag in ("--port", "--rest_api_port"):
        port = getattr(args, flag.removeprefix("--"))
        if not 0 <= port <= 65535:
            raise UserError(f"{flag} {port}: give a port from 0 to 65535")
    if args.model_config_file is None:
        if not args.model_base_path:
            raise UserError("give --model_base_path (with --model_name) or --model_config_file")
        version_dirs(args.model_base_path)


@dataclass(frozen=True)
class ModelConfig:
    name: str
    base_path: Path


def model_configs(args: argparse.Namespace) -> list[ModelConfig]:
    """Models from --model_config_file, or from --model_name/--model_base_path."""
    if args.model_config_file:
        from google.protobuf import text_format
        from tensorflow_serving.config import model_server_config_pb2

        config = model_server_config_pb2.ModelServerConfig()
        try:
            text_format.Parse(args.model_config_file.read_text(), config)
        except OSError as error:
            raise UserError(
                f"--model_config_file {args.model_config_file}: {error.strerror}"
            ) from error
        except text_format.ParseError as error:
            raise UserError(f"--model_config_file {args.model_config_file}: {error}") from error
        models = [ModelConfig(c.name, Path(c.base_path)) for c in config.model_config_list.config]
        if not models:
            raise UserError(f"--model_config_file {args.model_config_file} lists no model")
        return models
    if not args.model_base_path:
        raise UserError("give --model_base_path (with --model_name) or --model_config_file")
    return [ModelConfig(args.model_name, args.model_base_path)]


def prometheus_path(monitoring_config_file: Path | None) -> str | None:
    """The metrics path from a MonitoringConfig file when prometheus_config is enabled."""
    if monitoring_config_file is None:
        return None
    text = monitoring_config_file.read_text()
    if not re.search(r"enable\s*:\s*true", text):
        return None
    match = re.search(r'path\s*:\s*"([^"]+)"', text)
    return match.group(1) if match else "/monitoring/prometheus/metrics"
