"""The model store's tarball: `resnet-serving model export` (seeded random weights, offline)
and `model package`, run once per content of tooling/model/*.py and kept in the per-user
cache (`tooling.node.model_store` serves it)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from tooling import paths
from tooling.errors import UserError
from tooling.node import containerd

MODEL_SOURCES = paths.REPO_ROOT / "tooling" / "model"
EXPORT_TIMEOUT_SECONDS = 1800.0


def model_sources_hash() -> str:
    """A hash of tooling/model/*.py (names and contents): the tarball's cache key."""
    digest = hashlib.sha256()
    for source in sorted(MODEL_SOURCES.glob("*.py")):
        digest.update(source.name.encode() + b"\0" + source.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def model_tarball(cache: Path | None = None, progress: Callable[[str], None] = print) -> Path:
    """The packaged model (image_classifier, version 1, seeded random weights), exported and
    packaged by the CLI in a subprocess the first time for these model sources, then cached
    as CACHE/resnet101-HASH.tar.gz (older ones removed)."""
    cache = cache or containerd.cache_dir() / "model-store"
    tarball = cache / f"resnet101-{model_sources_hash()}.tar.gz"
    if tarball.is_file():
        return tarball
    cache.mkdir(parents=True, exist_ok=True)
    cli = [sys.executable, "-m", "tooling.cli", "model"]
    progress(f"model store: exporting and packaging ResNet101 into {tarball} (once) …")
    with tempfile.TemporaryDirectory(dir=cache) as scratch:
        steps = [
            [*cli, "export", "--out", f"{scratch}/models", "--weights", "random", "--seed", "0"],
            [*cli, "package", f"{scratch}/models/image_classifier", "--out", f"{scratch}/m.tar.gz"],
        ]
        for step in steps:
            result = subprocess.run(
                step,
                cwd=paths.REPO_ROOT,
                capture_output=True,
                text=True,
                timeout=EXPORT_TIMEOUT_SECONDS,
                check=False,
            )
            if result.returncode != 0:
                tail = (result.stderr or result.stdout).strip().splitlines()[-1:]
                raise UserError(f"model store: `{' '.join(step[2:5])}` failed: {tail}")
        os.replace(f"{scratch}/m.tar.gz", tarball)
    for old in cache.glob("resnet101-*.tar.gz"):
        if old != tarball:
            old.unlink()
    return tarball
