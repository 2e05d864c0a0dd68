"""Where the project's files and its pinned tools are."""

from __future__ import annotations

import os
from pathlib import Path

from tooling.errors import UserError

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent
CHARTS_DIR = REPO_ROOT / "charts"
# The lab's values: the story's default, and what `tune` and `up` lay others over.
LAB_VALUES = CHARTS_DIR / "resnet-serving" / "ci" / "lab-values.yaml"
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


def check_writable_folder(flag: str, folder: Path) -> None:
    """Raises a UserError naming `flag` unless `folder` is, or can be made, a folder this
    process may write in (its nearest existing part decides)."""
    existing = next(part for part in (folder, *folder.parents) if part.exists())
    if not existing.is_dir():
        raise UserError(f"{flag} {folder}: {existing} is a file, not a folder; give a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(
            f"{flag} {folder}: {existing} is not writable by you; give a folder you can write in"
        )
