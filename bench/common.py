"""Shared by the benchmarks: an exported model (cached between runs) and small timers."""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tooling import paths  # noqa: E402

CACHE = Path(os.environ.get("RESNET_SERVING_CACHE", Path.home() / ".cache" / "resnet-serving"))
PHOTOS = [path.read_bytes() for path in sorted(paths.IMAGES_DIR.glob("*.jpg"))]


def say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def bench_model() -> Path:
    """ResNet101 (seeded random weights: ImageNet's compute) exported once into the cache."""
    from tooling.model.export import export_model

    out = CACHE / "bench-model"
    model = out / "image_classifier"
    if not (model / "1" / "saved_model.pb").is_file():
        say("exporting ResNet101 for the benchmarks (once) …")
        export_model(out, weights="random", force=True)
    return model
