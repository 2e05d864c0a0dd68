"""Server-side batching in the manner of TF Serving's BasicBatchScheduler.

Concurrent requests for the same signature wait up to `batch_timeout_micros` to be joined into
one batch of at most `max_batch_size` rows, which `num_batch_threads` threads run. A full queue
(`max_enqueued_batches` batches) refuses new requests as UNAVAILABLE. A batch that fails is
retried request by request, so one bad image fails only its own request.
"""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tooling.serving.errors import ServingError

Inputs = dict[str, np.ndarray]
RunFn = Callable[[str, Inputs], Inputs]


@dataclass(frozen=True)
class BatchingParameters:
    """The fields of TF Serving's batching_parameters_file this server uses."""

    max_batch_size: int = 8
    batch_timeout_micros: int = 0
    max_enqueued_batches: int = 100
    num_batch_threads: int = 2
    allowed_batch_sizes: tuple[int, ...] = ()

    @classmethod
    def read(cls, path: Path) -> BatchingParameters:
        """Parses the text-format BatchingParameters file (`max_batch_size { value: 8 }` …)."""
        text = path.read_text()
        values = {}
        for name in (
            "max_batch_size",
            "batch_timeout_micros",
            "max_enqueued_batches",
            "num_batch_threads",
        ):
            match = re.search(rf"\b{name}\s*\{{\s*value\s*:\s*(\d+)\s*\}}", text)
            if match:
                values[name] = int(match.group(1))
        sizes = tuple(int(size) for size in re.findall(r"allowed_batch_sizes\s*:\s*(\d+)", text))
        return cls(**values, allowed_batch_sizes=sizes)


@dataclass
class _Task:
    inputs: Inputs
    rows: int
    future: Future = field(default_factory=Future)
    enqueued: float = field(default_factory=time.monotonic)


class Batcher:
    """Joins concurrent requests into batches and runs them on a few threads."""

    def __init__(self, run: RunFn, parameters: BatchingParameters) -> None:
        self.run_batch = run
        self.parameters = parameters
        self.queues: dict[str, deque[_Task]] = {}
        self.condition = threading.Condition()
        self.stopped = False
        self.threads = [
            threading.Thread(target=self._work, name=f"batch-{i}", daemon=True)
            for i in range(max(1, parameters.num_batch_threads))
        ]
        for thread in self.threads:
            thread.start()

    def submit(self, signature: str, inputs: Inputs) -> Inputs:
        """Runs `inputs` as part of a batch; blocks until its own outputs are ready."""
        rows = len(next(iter(inputs.values()))) if inputs else 0
        if rows > self.parameters.max_batch_size:
            raise ServingError(
                "INVALID_ARGUMENT",
                f"Task size {rows} is larger than maximum batch size "
                f"{self.parameters.max_batch_size}",
            )
        task = _Task(inputs, rows)
        limit = self.parameters.max_enqueued_batches * self.parameters.max_batch_size
        with self.condition:
            queued = sum(t.rows for queue in self.queues.values() for t in queue)
            if queued + rows > limit:
                raise ServingError(
                    "UNAVAILABLE",
                    "The batch scheduling queue to which this task was submitted is full",
                )
            self.queues.setdefault(signature, deque()).append(task)
            self.condition.notify()
        return task.future.result()

    def stop(self) -> None:
        with self.condition:
            self.stopped = True
            self.condition.notify_all()

    def _next_batch(self) -> tuple[str, list[_Task]] | None:
        timeout = self.parameters.batch_timeout_micros / 1e6
        with self.condition:
            while not self.stopped and not any(self.queues.values()):
                self.condition.wait()
            if self.stopped:
                return None
            signature = min(
                (name for name, queue in self.queues.items() if queue),
                key=lambda name: self.queues[name][0].enqueued,
            )
            queue = self.queues[signature]
            deadline = queue[0].enqueued + timeout
            while (
                sum(task.rows for task in queue) < self.parameters.max_batch_size
                and time.monotonic() < deadline
                and not self.stopped
            ):
                self.condition.wait(deadline - time.monotonic())
            batch, rows = [], 0
            while queue and rows + queue[0].rows <= self.parameters.max_batch_size:
                task = queue.popleft()
                batch.append(task)
                rows += task.rows
            return signature, batch

    def _work(self) -> None:
        while (next_batch := self._next_batch()) is not None:
            signature, batch = next_batch
            self._run(signature, batch)

    def _run(self, signature: str, batch: list[_Task]) -> None:
        try:
            joined = {
                key: np.concatenate([task.inputs[key] for task in batch]) for key in batch[0].inputs
            }
            joined = self._pad(joined)
            outputs = self.run_batch(signature, joined)
        except Exception as error:
            if len(batch) == 1:
                batch[0].future.set_exception(error)
                return
            for task in batch:  # isolate the request that broke the batch
                self._run(signature, [task])
            return
        start = 0
        for task in batch:
            task.future.set_result(
                {key: value[start : start + task.rows] for key, value in outputs.items()}
            )
            start += task.rows

    def _pad(self, inputs: Inputs) -> Inputs:
        """Pads a batch up to the next allowed batch size by repeating its first row."""
        sizes = self.parameters.allowed_batch_sizes
        rows = len(next(iter(inputs.values())))
        target = next((size for size in sorted(sizes) if size >= rows), rows)
        if target == rows:
            return inputs
        return {
            key: np.concatenate([value, np.repeat(value[:1], target - rows, axis=0)])
            for key, value in inputs.items()
        }
