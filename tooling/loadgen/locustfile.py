"""The project's one locustfile: predict calls against TensorFlow Serving, REST or gRPC.

Run by `resnet-serving load run` and, mounted from a ConfigMap, by charts/locust. Settings come
from environment variables so both set them the same way:

- PREDICT_PROTOCOL   rest (default) or grpc
- MODEL_NAME         served model name (image_classifier)
- MODEL_VERSION      pin a version (default: the latest)
- SIGNATURE_NAME     serving_default, or serving_preprocess as in the lab's request body
- INPUT_NAME         input tensor name for gRPC (default from the signature)
- TOP_K              classes each prediction must carry (5)
- IMAGES_DIR         directory of .jpg/.png request images (default: the package's photos)
- LOAD_SHAPE         step | ramp | spike | file:PATH (see load_shapes.py); unset = Locust's
                     own --users/--spawn-rate
- SPAWN_RATE         users started per second while a shape changes the count (2; the
                     spike shape's own SPIKE_SPAWN_RATE, 10, for it)
- WAIT_MIN, WAIT_MAX seconds each user waits between requests (the lab's 0.8-0.9)
- KEEP_ALIVE         1 (default): each REST user keeps its connection; 0: every request asks
                     for a new one (`Connection: close`), so each goes through the Service's
                     balancing as a new client's would. A kept connection stays with the replica
                     it reached (kube-proxy balances connections, not requests) even after that
                     replica leaves the endpoints, and its next request fails when the server
                     stops (measured in tests/test_real_locust_pods.py)
"""

from __future__ import annotations

import base64
import json
import os
import random
import sys
import time
from pathlib import Path

from locust import FastHttpUser, LoadTestShape, User, between, task

sys.path.insert(0, str(Path(__file__).resolve().parent))
import itertools

import load_shapes
import predict_wire

MODEL_NAME = os.environ.get("MODEL_NAME", "image_classifier")
MODEL_VERSION = os.environ.get("MODEL_VERSION", "")
SIGNATURE_NAME = os.environ.get("SIGNATURE_NAME", "serving_default")
DEFAULT_INPUT_NAMES = {"serving_default": "image_bytes", "serving_preprocess": "raw_images"}
INPUT_NAME = os.environ.get("INPUT_NAME") or DEFAULT_INPUT_NAMES.get(SIGNATURE_NAME, "image_bytes")
TOP_K = int(os.environ.get("TOP_K", "5"))
PROTOCOL = os.environ.get("PREDICT_PROTOCOL", "rest")
PACKAGE_IMAGES = Path(__file__).resolve().parent.parent / "data" / "images"
IMAGES_DIR = Path(os.environ.get("IMAGES_DIR") or PACKAGE_IMAGES)
KEEP_ALIVE = os.environ.get("KEEP_ALIVE", "1") != "0"
WAIT = between(float(os.environ.get("WAIT_MIN", "0.8")), float(os.environ.get("WAIT_MAX", "0.9")))


def load_images(directory: Path) -> list[bytes]:
    """Reads every .jpg/.jpeg/.png in `directory`; fails loudly when there is none."""
    images = [
        path.read_bytes()
        for path in sorted(directory.glob("*"))
        if path.suffix.lower() in {".jpg", ".jpeg", ".png"}
    ]
    if not images:
        raise SystemExit(f"locustfile: no .jpg/.png images in {directory}; set IMAGES_DIR")
    return images


IMAGES = load_images(IMAGES_DIR)


def check_prediction(prediction: dict) -> str | None:
    """Returns what is wrong with one prediction, or None: k probabilities, non-increasing."""
    probabilities = prediction.get("probabilities")
    if not isinstance(probabilities, list) or len(probabilities) != TOP_K:
        return f"expected {TOP_K} probabilities, got {probabilities!r:.200}"
    if any(later > earlier + 1e-6 for earlier, later in itertools.pairwise(probabilities)):
        return f"probabilities are not sorted high to low: {probabilities}"
    for key in ("classes", "labels"):
        if key in prediction and len(prediction[key]) != TOP_K:
            return f"expected {TOP_K} {key}, got {len(prediction[key])}"
    return None


def predict_path() -> str:
    version = f"/versions/{MODEL_VERSION}" if MODEL_VERSION else ""
    return f"/v1/models/{MODEL_NAME}{version}:predict"


class RestPredictUser(FastHttpUser):
    """POSTs one image per request to TF Serving's REST predict API (the lab's body)."""

    abstract = PROTOCOL != "rest"
    wait_time = WAIT

    def on_start(self) -> None:
        self.bodies = [
            json.dumps(
                {
                    "signature_name": SIGNATURE_NAME,
                    "instances": [{"b64": base64.b64encode(image).decode("ascii")}],
                }
            )
            for image in IMAGES
        ]
        self.headers = {"Content-Type": "application/json"}
        if not KEEP_ALIVE:
            self.headers["Connection"] = "close"

    @task
    def predict(self) -> None:
        with self.client.post(
            predict_path(),
            data=random.choice(self.bodies),
            headers=self.headers,
            name="REST predict",
            catch_response=True,
        ) as response:
            text = response.text or ""  # None when no answer came (a reset connection)
            if response.status_code != 200:
                reason = response.error or text[:200]  # status 0: the connection failed
                response.failure(f"HTTP {response.status_code}: {reason}")
                return
            try:
                prediction = response.json()["predictions"][0]
            except (ValueError, KeyError, IndexError, TypeError):
                response.failure(f"no predictions in the response: {text[:200]}")
                return
            problem = check_prediction(prediction)
            if problem:
                response.failure(problem)


class GrpcPredictUser(User):
    """Calls PredictionService/Predict over gRPC and reports to Locust's request events.

    Needs grpcio only: the messages are encoded by predict_wire, not by tensorflow-serving-api
    (whose classes import all of TensorFlow, seconds that outlast a worker's heartbeat)."""

    abstract = PROTOCOL != "grpc"
    wait_time = WAIT

    def __init__(self, environment: object) -> None:
        super().__init__(environment)
        self.channel = None
        self.predict_call = None

    def on_start(self) -> None:
        import grpc  # the gRPC user needs grpcio; the REST user does not

        target = (self.host or "").split("://", 1)[-1].rstrip("/")
        self.channel = grpc.insecure_channel(target)
        self.predict_call = self.channel.unary_unary(predict_wire.PREDICT_METHOD)
        version = int(MODEL_VERSION) if MODEL_VERSION else None
        self.requests = [
            predict_wire.predict_request(
                MODEL_NAME,
                SIGNATURE_NAME,
                {INPUT_NAME: predict_wire.string_tensor([image])},
                version=version,
            )
            for image in IMAGES
        ]

    def on_stop(self) -> None:
        if self.channel is not None:
            self.channel.close()

    @task
    def predict(self) -> None:
        request = random.choice(self.requests)
        started = time.perf_counter()
        exception: Exception | None = None
        length = 0
        try:
            response = self.predict_call(request, timeout=30)
            length = len(response)
            outputs = predict_wire.response_outputs(response)
            if "probabilities" not in outputs:
                raise AssertionError(f"no probabilities in the response: {sorted(outputs)}")
            probabilities = predict_wire.float_values(outputs["probabilities"])
            problem = check_prediction({"probabilities": probabilities})
            if problem:
                exception = AssertionError(problem)
        except Exception as error:  # reported to Locust as a failed request
            exception = error
        self.environment.events.request.fire(
            request_type="grpc",
            name="gRPC Predict",
            response_time=(time.perf_counter() - started) * 1000,
            response_length=length,
            exception=exception,
            context={},
        )


if os.environ.get("LOAD_SHAPE"):

    class SelectedShape(LoadTestShape):
        """The shape named by LOAD_SHAPE; the run ends when the shape does, or at --run-time
        (Locust does not stop a shape at its run time by itself)."""

        schedule = load_shapes.shape_from_spec(os.environ["LOAD_SHAPE"])
        spawn_rate = float(os.environ.get("SPAWN_RATE", "2"))

        def tick(self) -> tuple[int, float] | None:
            elapsed = self.get_run_time()
            options = getattr(self.runner.environment, "parsed_options", None)
            run_time = getattr(options, "run_time", None)  # seconds, parsed by Locust
            if run_time and elapsed >= run_time:
                return None
            users = self.schedule.users_at(elapsed)
            # a spike sets its own rate (it must rise within seconds)
            rate = getattr(self.schedule, "spawn_rate", self.spawn_rate)
            return None if users is None else (users, rate)
