"""The model server's core, shared by the REST and gRPC front ends."""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from tooling.serving.batching import Batcher, BatchingParameters
from tooling.serving.errors import ServingError
from tooling.serving.servable import Servable

LATENCY_BUCKETS_US = (1e3, 5e3, 1e4, 2.5e4, 5e4, 1e5, 2.5e5, 5e5, 1e6, 2.5e6, 5e6, 1e7)


@dataclass
class Metrics:
    """TF Serving's request metrics, exported in Prometheus text format."""

    requests: Counter = field(default_factory=Counter)
    latency_counts: Counter = field(default_factory=Counter)
    latency_sum_us: Counter = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, model: str, status: str, api: str, seconds: float) -> None:
        with self.lock:
            self.requests[(model, status)] += 1
            micros = seconds * 1e6
            for bucket in (*LATENCY_BUCKETS_US, float("inf")):
                if micros <= bucket:
                    self.latency_counts[(model, api, bucket)] += 1
            self.latency_sum_us[(model, api)] += micros

    def prometheus_text(self) -> str:
        lines = ["# TYPE :tensorflow:serving:request_count counter"]
        with self.lock:
            for (model, status), count in sorted(self.requests.items()):
                labels = f'model_name="{model}",status="{status}"'
                lines.append(f":tensorflow:serving:request_count{{{labels}}} {count}")
            lines.append("# TYPE :tensorflow:serving:request_latency histogram")
            for (model, api, bucket), count in sorted(self.latency_counts.items()):
                le = "+Inf" if bucket == float("inf") else f"{bucket:g}"
                lines.append(
                    f':tensorflow:serving:request_latency_bucket{{model_name="{model}",'
                    f'API="{api}",entrypoint="REST",le="{le}"}} {count}'
                )
            for (model, api), total in sorted(self.latency_sum_us.items()):
                count = self.latency_counts[(model, api, float("inf"))]
                labels = f'model_name="{model}",API="{api}",entrypoint="REST"'
                lines.append(f":tensorflow:serving:request_latency_sum{{{labels}}} {total:.0f}")
                lines.append(f":tensorflow:serving:request_latency_count{{{labels}}} {count}")
        return "\n".join(lines) + "\n"


class ModelServer:
    """Loaded servables by name, with optional batching, and request metrics."""

    def __init__(self, servables: dict[str, Servable], batching: BatchingParameters | None) -> None:
        self.servables = servables
        self.metrics = Metrics()
        self.batchers: dict[str, Batcher] = {}
        if batching is not None:
            for name, servable in servables.items():
                self.batchers[name] = Batcher(servable.run, batching)

    def servable(self, name: str, version: int | None = None) -> Servable:
        servable = self.servables.get(name)
        if servable is None or (version is not None and version != servable.version):
            spec = f"Specific({name}, {version})" if version is not None else f"Latest({name})"
            raise ServingError("NOT_FOUND", f"Servable not found for request: {spec}")
        return servable

    def predict(
        self,
        name: str,
        version: int | None,
        signature: str,
        inputs: dict[str, np.ndarray],
        api: str,
    ) -> tuple[Servable, dict[str, np.ndarray]]:
        started = time.perf_counter()
        status = "OK"
        try:
            servable = self.servable(name, version)
            batcher = self.batchers.get(name)
            outputs = (
                batcher.submit(signature, inputs) if batcher else servable.run(signature, inputs)
            )
            return servable, outputs
        except ServingError as error:
            status = error.code
            raise
        finally:
            self.metrics.record(name, status, api, time.perf_counter() - started)

    def stop(self) -> None:
        for batcher in self.batchers.values():
            batcher.stop()
