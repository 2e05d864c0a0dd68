"""Values tables for the charts' READMEs, generated from the `# --` comments in values.yaml.

A comment that starts with `# --` (continued on the following `#` lines) documents the key
right below it; a documented map documents everything inside it. The table lives in the
chart's README.md between the markers below, so docs can't drift from values.yaml.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from tooling.errors import UserError

START_MARKER = "<!-- values-table-start -->"
END_MARKER = "<!-- values-table-end -->"
KEY_LINE = re.compile(r"^(?P<indent>\s*)(?P<key>[A-Za-z0-9_.-]+):(?:\s|$)")
DOC_START = re.compile(r"^\s*# -- ?(?P<text>.*)$")
DOC_MORE = re.compile(r"^\s*#\s?(?P<text>.*)$")


@dataclass(frozen=True)
class ValueDoc:
    key: str
    default: object
    description: str


def documented_keys(values_yaml: str) -> dict[str, str]:
    """Maps dotted key paths to their `# --` descriptions."""
    docs: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    pending: list[str] | None = None
    for line in values_yaml.splitlines():
        if not line.strip():
            pending = None
            continue
        if start := DOC_START.match(line):
            pending = [start["text"].strip()]
            continue
        if (more := DOC_MORE.match(line)) and pending is not None:
            pending.append(more["text"].strip())
            continue
        if line.lstrip().startswith("#"):
            continue
        match = KEY_LINE.match(line)
        if not match:
            continue
        indent = len(match["indent"])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, match["key"]))
        if pending is not None:
            docs[".".join(key for _, key in stack)] = " ".join(pending).strip()
            pending = None
    return docs


def _leaves(node: object, prefix: str = "") -> list[str]:
    if isinstance(node, dict) and node:
        return [leaf for key, value in node.items() for leaf in _leaves(value, f"{prefix}{key}.")]
    return [prefix.rstrip(".")]


def _lookup(values: dict, dotted: str) -> object:
    node: object = values
    for key in dotted.split("."):
        node = node[key]  # type: ignore[index]
    return node


def value_docs(chart: Path) -> tuple[list[ValueDoc], list[str]]:
    """The documented values of `chart` and the leaf keys nobody documented."""
    text = (chart / "values.yaml").read_text()
    values = yaml.safe_load(text) or {}
    docs = documented_keys(text)
    undocumented = [
        leaf
        for leaf in _leaves(values)
        if not any(leaf == key or leaf.startswith(key + ".") for key in docs)
    ]
    rows = [ValueDoc(key, _lookup(values, key), text) for key, text in docs.items()]
    return rows, undocumented


def values_table(rows: list[ValueDoc]) -> str:
    lines = ["| Key | Default | Description |", "| --- | --- | --- |"]
    for row in rows:
        default = json.dumps(row.default, ensure_ascii=False).replace("|", "\\|")
        description = row.description.replace("|", "\\|")
        lines.append(f"| `{row.key}` | `{default}` | {description} |")
    return "\n".join(lines)


def render_readme(chart: Path) -> str:
    """The chart's README.md with a freshly generated values table between the markers."""
    readme = (chart / "README.md").read_text()
    if START_MARKER not in readme or END_MARKER not in readme:
        raise UserError(f"{chart}/README.md needs the markers {START_MARKER} and {END_MARKER}")
    rows, _ = value_docs(chart)
    head, rest = readme.split(START_MARKER, 1)
    _, tail = rest.split(END_MARKER, 1)
    return f"{head}{START_MARKER}\n{values_table(rows)}\n{END_MARKER}{tail}"
