"""Where the project's files and its pinned tools are."""

from __future__ import annotations

import os
from pathlib import Path

from tooling.errors import UserError

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent
CHARTS_DIR = REPO_ROOT / "charts"
DATA_DIR = PACKAGE_DIR / "data"
IMAGES_DIR = DATA_DIR / "images"
VERSIONS_FILE = REPO_ROOT / "hack" / "versions.env"


def tools_bin() -> Path:
    """The folder `make setup` links the pinned CLI tools into (RESNET_SERVING_TOOLS overrides)."""
    return Path(os.environ.get("RESNET_SERVING_TOOLS", REPO_ROOT / ".tools" / "bin"))


def tool(name: str) -> Path:
    """Path of a pinned tool; raises with what to do when `make setup` has not installed it."""
    path = tools_bin() / name
    if not os.access(path, os.X_OK):
        raise UserError(
            f"{name} is not installed in {tools_bin()}: run `make setup` "
            "(`make setup-rehearsal` for the rehearsal cluster's tools)"
        )
    return path


def pinned_versions() -> dict[str, str]:
    """NAME=VERSION pairs from hack/versions.env, the one place versions are set."""
    versions = {}
    for line in VERSIONS_FILE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            name, value = line.split("=", 1)
            versions[name.strip()] = value.strip()
    return versions
