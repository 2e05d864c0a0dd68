"""Checks of what a run is given, made where the flags are parsed, before anything starts.

Each raises a UserError naming the flag and what a good value looks like. The `argparse`
type functions (`values_file_type`) run while the command line is parsed; the others are called
first thing in a verb's handler, where they need more than one flag.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from tooling.errors import UserError, one_line

if TYPE_CHECKING:
    from tooling.runs.run_spec import LoadSpec

HOST_FORMS = (
    "http://HOST[:PORT] or https://HOST[:PORT], e.g. http://127.0.0.1:8501 "
    "(--protocol grpc: HOST:PORT, e.g. 127.0.0.1:8500)"
)
# a DNS name, an IPv4 address or a bracketed IPv6 address (urlsplit drops the brackets)
HOSTNAME = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.?)+$|^[0-9a-fA-F:.]+$")


def values_file_type(flag: str) -> Callable[[str], Path]:
    """An argparse type: a chart values file that exists and holds a YAML mapping (an empty
    file is one), named by `flag` when it does not."""

    def values_file(text: str) -> Path:
        path = Path(text)
        if not path.is_file():
            raise UserError(f"{flag} {text}: no such file; give a chart values file (YAML)")
        try:
            loaded = yaml.safe_load(path.read_text())
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
            problem = yaml_problem(error)
            raise UserError(f"{flag} {text}: not readable as YAML ({problem})") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise UserError(
                f"{flag} {text}: holds a {type(loaded).__name__}, not a mapping of chart keys "
                "(e.g. `autoscaling:` … at the top level)"
            )
        return path

    return values_file


def yaml_problem(error: Exception) -> str:
    mark, problem = getattr(error, "problem_mark", None), getattr(error, "problem", None)
    if mark is None or problem is None:
        return one_line(error, 200)
    return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"


values_file = values_file_type("--values")


def check_host(host: str, protocol: str = "rest") -> None:
    """--host: http(s)://HOST[:PORT] for REST; HOST:PORT (a scheme allowed) for gRPC."""
    wrong = UserError(f"--host {host!r}: give the model server's address as {HOST_FORMS}")
    text = host.strip()
    if protocol == "grpc" and "://" not in text:
        text = f"grpc://{text}"
    parts = urllib.parse.urlsplit(text)
    schemes = ("http", "https", "grpc") if protocol == "grpc" else ("http", "https")
    try:
        port = parts.port
    except ValueError:
        raise wrong from None
    hostname = parts.hostname or ""
    if (
        parts.scheme not in schemes
        or not HOSTNAME.match(hostname)
        or parts.username is not None
        or parts.query
        or parts.fragment
        or (protocol == "grpc" and (port is None or parts.path.strip("/")))
    ):
        raise wrong


def check_load(load: LoadSpec) -> None:
    """The load: --step-seconds, and the shape (a shape file read and parsed, its variables
    as given) built as the run will build it."""
    if load.step_seconds is not None and load.step_seconds <= 0:
        raise UserError(f"--step-seconds {load.step_seconds:g}: give a number of seconds above 0")
    load.schedule()
