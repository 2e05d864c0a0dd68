"""P5: what makes a new replica slow to serve, phase by phase, measured in one run.

A replica on the cluster is Ready after: the model fetched and unpacked (the init container),
the server started, the SavedModel loaded, its warmup records replayed, and the startup probe's
next look. Each phase runs here for real on the bench model: the tarball `model package` makes,
unpacked by tar as fetch-model.sh does (the download itself is the tarball's size over the
cluster's link to the bucket: printed, not guessed), then a fresh server process per case
(TensorFlow imported, the model loaded, with or without warmup, the first request timed).

Prints the phases, P5 = first request without warmup ÷ first request after warmup, and how
the chart's startup probe compares: its budget (failureThreshold * periodSeconds) ÷ the
measured start, and the mean delay its period adds (period ÷ 2).
Usage: python bench/replica_startup.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from common import REPO, bench_model, say

CHILD = r"""
import json, sys, time
from pathlib import Path
started = time.perf_counter()
import tensorflow as tf
from tooling.serving.servable import Servable
from tooling.serving.server import replay_warmup
from tooling import paths
imported = time.perf_counter()
servable = Servable.load("image_classifier", Path(sys.argv[1]))
loaded = time.perf_counter()
warmups = replay_warmup(servable) if sys.argv[2] == "warmup" else 0
warmed = time.perf_counter()
photo = sorted(paths.IMAGES_DIR.glob("*.jpg"))[0].read_bytes()
inputs = {"image_bytes": tf.constant([photo]).numpy()}
first = time.perf_counter()
servable.run("serving_default", inputs)
second = time.perf_counter()
servable.run("serving_default", inputs)
done = time.perf_counter()
print(json.dumps({"import_s": imported - started, "load_s": loaded - imported,
  "warmup_s": warmed - loaded, "warmups": warmups, "first_ms": (second - first) * 1000,
  "second_ms": (done - second) * 1000}))
"""


def server_start(model: Path, warmup: bool) -> dict[str, float]:
    """A fresh process: import TensorFlow, load the model, maybe warm up, two requests."""
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(model), "warmup" if warmup else "cold"],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
        env={"TF_CPP_MIN_LOG_LEVEL": "2", "PATH": "/usr/bin:/bin"},
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def unpack_seconds(model: Path) -> tuple[float, float]:
    """(tarball MB, seconds for tar to unpack it) for the tarball `model package` writes."""
    from tooling.model.package import package

    with tempfile.TemporaryDirectory() as scratch:
        tarball = package(model, Path(scratch) / "model.tar.gz")
        (Path(scratch) / "out").mkdir()
        started = time.perf_counter()
        subprocess.run(["tar", "-xzf", str(tarball), "-C", f"{scratch}/out"], check=True)
        return tarball.stat().st_size / 1e6, time.perf_counter() - started


def main() -> None:
    model = bench_model()
    say("P5: packaging and unpacking the model …")
    megabytes, unpack = unpack_seconds(model)
    say("P5: a fresh server without warmup, then one with warmup …")
    cold, warm = server_start(model, warmup=False), server_start(model, warmup=True)
    start = warm["import_s"] + warm["load_s"] + warm["warmup_s"]
    values = yaml.safe_load((REPO / "charts/resnet-serving/values.yaml").read_text())
    probe = values["startupProbe"]
    budget = probe["periodSeconds"] * probe["failureThreshold"]
    rows = [
        ("download", f"{megabytes:.0f} MB over the cluster's link to the bucket"),
        ("unpack (tar -xzf)", f"{unpack:.1f} s"),
        ("server start (import TensorFlow)", f"{warm['import_s']:.1f} s"),
        ("load the SavedModel", f"{warm['load_s']:.1f} s"),
        (f"replay {warm['warmups']:.0f} warmup records", f"{warm['warmup_s']:.1f} s"),
        ("first request after warmup", f"{warm['first_ms']:.0f} ms"),
        ("first request without warmup", f"{cold['first_ms']:.0f} ms"),
        ("second request (steady)", f"{warm['second_ms']:.0f} ms"),
    ]
    print("| phase | measured |\n| --- | --- |")
    print("\n".join(f"| {name} | {value} |" for name, value in rows))
    print(
        f"\nP5 = first request without warmup ÷ after warmup = "
        f"{cold['first_ms'] / warm['first_ms']:.1f}"
    )
    print(
        f"start to ready here (import + load + warmup) = {start:.1f} s; the startup probe's "
        f"budget {budget} s = {budget / start:.0f} times that; its period adds "
        f"{probe['periodSeconds'] / 2:g} s on average"
    )


if __name__ == "__main__":
    main()
