"""The batching queue: joins concurrent requests, keeps answers apart, isolates a bad request,
refuses work when full, and reads TF Serving's batching parameters file."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from tooling.serving.batching import Batcher, BatchingParameters
from tooling.serving.errors import ServingError


class RecordingModel:
    """A real (tiny) model: doubles its input, records each batch size it ran, rejects -1."""

    def __init__(self, delay: float = 0.0) -> None:
        self.batches: list[int] = []
        self.delay = delay
        self.lock = threading.Lock()

    def run(self, signature: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        x = inputs["x"]
        if (x == -1).any():
            raise ServingError("INVALID_ARGUMENT", "bad row")
        with self.lock:
            self.batches.append(len(x))
        time.sleep(self.delay)
        return {"y": x * 2, "signature": np.array([signature] * len(x), dtype=object)}


def submit_all(batcher: Batcher, values: list[int], signature: str = "s") -> list[object]:
    def one(value: int) -> object:
        try:
            return batcher.submit(signature, {"x": np.array([value])})
        except ServingError as error:
            return error

    with ThreadPoolExecutor(len(values)) as pool:
        return list(pool.map(one, values))


def test_concurrent_requests_share_batches_and_keep_their_answers():
    model = RecordingModel(delay=0.05)
    batcher = Batcher(
        model.run,
        BatchingParameters(max_batch_size=8, batch_timeout_micros=50_000, num_batch_threads=1),
    )
    results = submit_all(batcher, list(range(16)))
    batcher.stop()
    assert [int(r["y"][0]) for r in results] == [2 * v for v in range(16)]
    assert sum(model.batches) == 16
    assert len(model.batches) < 16 and max(model.batches) <= 8


def test_a_bad_request_fails_alone():
    model = RecordingModel()
    batcher = Batcher(model.run, BatchingParameters(max_batch_size=8, batch_timeout_micros=50_000))
    results = submit_all(batcher, [1, -1, 2, 3])
    batcher.stop()
    assert isinstance(results[1], ServingError) and results[1].code == "INVALID_ARGUMENT"
    assert [int(results[i]["y"][0]) for i in (0, 2, 3)] == [2, 4, 6]


def test_signatures_are_never_mixed_in_one_batch():
    model = RecordingModel()
    batcher = Batcher(model.run, BatchingParameters(max_batch_size=8, batch_timeout_micros=20_000))
    with ThreadPoolExecutor(6) as pool:
        futures = [pool.submit(batcher.submit, sig, {"x": np.array([1])}) for sig in "ababab"]
        results = [f.result() for f in futures]
    batcher.stop()
    for signature, result in zip("ababab", results, strict=True):
        assert result["signature"][0] == signature


def test_padding_to_allowed_batch_sizes_returns_only_real_rows():
    model = RecordingModel()
    batcher = Batcher(model.run, BatchingParameters(max_batch_size=8, allowed_batch_sizes=(4, 8)))
    result = batcher.submit("s", {"x": np.array([5, 6, 7])})
    batcher.stop()
    assert result["y"].tolist() == [10, 12, 14]
    assert model.batches == [4]


def test_oversized_task_and_full_queue_are_refused():
    model = RecordingModel(delay=0.3)
    batcher = Batcher(
        model.run, BatchingParameters(max_batch_size=2, max_enqueued_batches=1, num_batch_threads=1)
    )
    with pytest.raises(ServingError, match="larger than maximum batch size"):
        batcher.submit("s", {"x": np.arange(3)})
    results = submit_all(batcher, list(range(8)))
    batcher.stop()
    refused = [r for r in results if isinstance(r, ServingError)]
    assert refused and all(r.code == "UNAVAILABLE" for r in refused)


def test_batching_parameters_file_is_read(tmp_path):
    path = tmp_path / "batching.config"
    path.write_text(
        "max_batch_size { value: 16 }\nbatch_timeout_micros { value: 5000 }\n"
        "max_enqueued_batches { value: 7 }\nnum_batch_threads { value: 3 }\n"
        "allowed_batch_sizes: 4\nallowed_batch_sizes: 16\n"
    )
    assert BatchingParameters.read(path) == BatchingParameters(16, 5000, 7, 3, (4, 16))
