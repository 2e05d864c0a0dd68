"""Kubernetes resource quantities ("1500m", "4Gi", "3") as numbers."""

from __future__ import annotations

import re

_SUFFIXES = {
    "n": 1e-9,
    "u": 1e-6,
    "m": 1e-3,
    "": 1.0,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "E": 1e18,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}
_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)([a-zA-Z]*)$")


def quantity(value: str | int | float) -> float:
    """The number a quantity stands for (CPU in cores, memory in bytes)."""
    if isinstance(value, int | float):
        return float(value)
    match = _QUANTITY.match(value.strip())
    if not match or match.group(2) not in _SUFFIXES:
        raise ValueError(f"not a Kubernetes quantity: {value!r}")
    return float(match.group(1)) * _SUFFIXES[match.group(2)]


cpu_cores = quantity
memory_bytes = quantity


def millicores(cores: float) -> str:
    """Cores as a CPU quantity in millicores, e.g. 1.5 → "1500m"."""
    return f"{max(0, round(cores * 1000))}m"
