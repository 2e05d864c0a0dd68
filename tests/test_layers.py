"""No import runs up the layers: a package imports only what sits below it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

TOOLING = Path(__file__).resolve().parent.parent / "tooling"
# Each package, and the packages above it that it must not import.
ABOVE = {
    "gke": ("tooling.providers", "tooling.commands", "tooling.tuning", "tooling.up_down"),
    "fleet": ("tooling.rehearsal", "tooling.providers", "tooling.commands", "tooling.tuning"),
    "report": ("tooling.runs", "tooling.rehearsal", "tooling.providers", "tooling.commands"),
    "runs": ("tooling.rehearsal", "tooling.providers", "tooling.commands", "tooling.tuning"),
    "rehearsal": ("tooling.providers", "tooling.commands", "tooling.tuning", "tooling.up_down"),
    "providers": ("tooling.commands", "tooling.up_down"),
}


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("package", sorted(ABOVE))
def test_a_package_imports_nothing_above_it(package):
    upward = [
        f"{path.relative_to(TOOLING.parent)} imports {name}"
        for path in sorted((TOOLING / package).glob("*.py"))
        for name in sorted(imported(path))
        if name.startswith(ABOVE[package])
    ]
    assert not upward


# The bottom layer: modules every package may use. They import no other tooling module but
# these leaves (tooling.runs.transient is one: it imports only the kubernetes client).
BOTTOM = {"waiting.py": ("tooling.errors", "tooling.runs.transient")}


@pytest.mark.parametrize("module", sorted(BOTTOM))
def test_a_bottom_module_imports_only_leaves(module):
    leaves = BOTTOM[module]
    upward = [name for name in sorted(imported(TOOLING / module)) if name.startswith("tooling")]
    assert [name for name in upward if name not in leaves] == []
    for leaf in leaves:
        path = TOOLING.parent / (leaf.replace(".", "/") + ".py")
        assert not [name for name in imported(path) if name.startswith("tooling")], leaf
