"""Measures what one prediction costs in CPU on this machine, for the rehearsal's load model.

CPU-seconds per request = process CPU time (all threads) / requests, running the real
SavedModel signature (decode + ResNet101 forward) on the project's photos: at batch 1 one
request at a time, at batch 1 with one request per core at once (what an unbatched server
under load does), and batched (what TF Serving's batching achieves). The load model and the
rehearsal's replica fleet turn requests into per-pod CPU with it.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from tooling import paths
from tooling.errors import UserError

CALIBRATION_FILE = paths.DATA_DIR / "calibration.json"


@dataclass(frozen=True)
class Calibration:
    cpu_seconds_per_request: float  # batch 1
    cpu_seconds_per_image_batched: float
    batch_size: int
    wall_ms_batch1_median: float
    images_per_second_batched: float
    threads: int
    cpu_model: str
    tensorflow: str
    measured_at: str
    # batch 1, one request per core at once (absent from calibrations made before it)
    cpu_seconds_per_request_concurrent: float | None = None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def measure(
    model_dir: Path, requests: int = 20, batch_size: int = 8, threads: int = 0
) -> Calibration:
    """Runs the model's serving_default signature and measures CPU and wall time."""
    import tensorflow as tf

    from tooling.serving.servable import Servable

    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
    servable = Servable.load("image_classifier", model_dir)
    function = servable.signature("serving_default")
    photos = [p.read_bytes() for p in sorted(paths.IMAGES_DIR.glob("*.jpg"))]
    single = [tf.constant([photos[i % len(photos)]]) for i in range(requests)]
    batch = tf.constant([photos[i % len(photos)] for i in range(batch_size)])
    function(image_bytes=single[0])
    function(image_bytes=batch)  # warm both shapes

    walls = []
    cpu_start = time.process_time()
    for images in single:
        started = time.perf_counter()
        function(image_bytes=images)
        walls.append(time.perf_counter() - started)
    cpu_single = (time.process_time() - cpu_start) / requests

    cpu_concurrent = concurrent_cost(function, single, threads or os.cpu_count() or 1)

    rounds = max(2, requests // batch_size)
    cpu_start, wall_start = time.process_time(), time.perf_counter()
    for _ in range(rounds):
        function(image_bytes=batch)
    cpu_batched = (time.process_time() - cpu_start) / (rounds * batch_size)
    wall_batched = time.perf_counter() - wall_start

    return Calibration(
        cpu_seconds_per_request=round(cpu_single, 4),
        cpu_seconds_per_image_batched=round(cpu_batched, 4),
        batch_size=batch_size,
        wall_ms_batch1_median=round(statistics.median(walls) * 1000, 1),
        images_per_second_batched=round(rounds * batch_size / wall_batched, 2),
        threads=threads or os.cpu_count() or 1,
        cpu_model=_cpu_model(),
        tensorflow=tf.__version__,
        measured_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        cpu_seconds_per_request_concurrent=round(cpu_concurrent, 4),
    )


def concurrent_cost(function: object, single: list, clients: int) -> float:
    """CPU-seconds per request with `clients` threads each sending single images at once (TF
    runs them side by side; the GIL is released while it computes)."""
    import concurrent.futures

    per_client = max(4, len(single) // clients)
    cpu_start = time.process_time()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        jobs = [
            pool.submit(lambda: [function(image_bytes=images) for images in single[:per_client]])
            for _ in range(clients)
        ]
        for job in jobs:
            job.result()
    return (time.process_time() - cpu_start) / (per_client * clients)


def save(calibration: Calibration, path: Path = CALIBRATION_FILE) -> Path:
    path.write_text(json.dumps(asdict(calibration), indent=2) + "\n")
    return path


def load(path: Path = CALIBRATION_FILE) -> Calibration:
    """The calibration the load model uses; `resnet-serving calibrate` writes it."""
    if not path.is_file():
        raise UserError(f"{path} is missing: run `resnet-serving calibrate`")
    return Calibration(**json.loads(path.read_text()))
