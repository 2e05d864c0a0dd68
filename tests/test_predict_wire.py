"""The gRPC user's hand-encoded messages against tensorflow-serving-api's real ones."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tooling.loadgen import predict_wire


@pytest.fixture(scope="module")
def predict_pb2():
    """tensorflow-serving-api's real messages (they import TensorFlow: the slow tier)."""
    return pytest.importorskip(
        "tensorflow_serving.apis.predict_pb2", reason="make setup installs tensorflow-serving-api"
    )


@pytest.mark.slow
@pytest.mark.parametrize("version", [None, 3])
def test_request_parses_as_the_real_predict_request(predict_pb2, version):
    images = [b"\xff\xd8jpeg", b"\x89PNG" + bytes(range(256)) * 3]  # > 127 bytes: 2-byte length
    encoded = predict_wire.predict_request(
        "image_classifier",
        "serving_preprocess",
        {"raw_images": predict_wire.string_tensor(images)},
        version=version,
    )
    request = predict_pb2.PredictRequest.FromString(encoded)
    assert request.model_spec.name == "image_classifier"
    assert request.model_spec.signature_name == "serving_preprocess"
    assert request.model_spec.HasField("version") == (version is not None)
    assert request.model_spec.version.value == (version or 0)
    tensor = request.inputs["raw_images"]
    assert tensor.dtype == predict_wire.DT_STRING
    assert [d.size for d in tensor.tensor_shape.dim] == [2]
    assert list(tensor.string_val) == images


@pytest.mark.slow
@pytest.mark.parametrize("packing", ["float_val", "tensor_content"])
def test_probabilities_read_from_the_real_predict_response(predict_pb2, packing):
    import numpy as np
    from tensorflow.core.framework import tensor_pb2

    probabilities = np.array([0.5, 0.25, 0.125, 0.0625, 1e-7], dtype=np.float32)
    tensor = tensor_pb2.TensorProto(dtype=1)
    tensor.tensor_shape.dim.add().size = 1
    tensor.tensor_shape.dim.add().size = 5
    if packing == "float_val":
        tensor.float_val.extend(probabilities.tolist())
    else:
        tensor.tensor_content = probabilities.tobytes()
    response = predict_pb2.PredictResponse()
    response.outputs["probabilities"].CopyFrom(tensor)
    response.outputs["labels"].string_val.append(b"tench")
    response.model_spec.name = "image_classifier"

    outputs = predict_wire.response_outputs(response.SerializeToString())
    assert sorted(outputs) == ["labels", "probabilities"]
    assert predict_wire.float_values(outputs["probabilities"]) == probabilities.tolist()


def test_truncated_response_is_an_error_not_a_hang():
    encoded = predict_wire.predict_request("m", "s", {"x": predict_wire.string_tensor([b"abc"])})
    with pytest.raises(ValueError, match="truncated"):
        predict_wire.response_outputs(encoded[:-2])


def run_with_the_grpc_user(code: str) -> subprocess.CompletedProcess:
    """Runs `code` in a fresh interpreter where `user_class` is the locustfile's gRPC user."""
    from tooling.loadgen import LOCUSTFILE

    prelude = """
import runpy, sys
from locust.env import Environment
user_class = runpy.run_path(sys.argv[1])["GrpcPredictUser"]
environment = Environment(user_classes=[user_class], host="127.0.0.1:1")
"""
    return subprocess.run(
        [sys.executable, "-c", prelude + code, str(LOCUSTFILE)],
        env={"PREDICT_PROTOCOL": "grpc", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_grpc_user_starts_without_tensorflow():
    """The cause of the cold-start failure: a gRPC user's on_start imported TensorFlow (through
    tensorflow-serving-api) inside a greenlet, and outlasted the worker's heartbeat."""
    result = run_with_the_grpc_user("""
user = user_class(environment)
user.on_start()
user.on_stop()
loaded = sorted(m for m in sys.modules if m.split(".")[0].startswith("tensorflow"))
print(len(user.requests), loaded)
""")
    assert result.returncode == 0, result.stderr[-2000:]
    requests, modules = result.stdout.strip().splitlines()[-1].split(" ", 1)
    assert int(requests) > 0
    assert modules == "[]"


def test_grpc_user_that_never_started_stops_cleanly():
    """on_stop of a user whose on_start did not finish raised AttributeError ('channel')."""
    result = run_with_the_grpc_user('user_class(environment).on_stop()\nprint("stopped")\n')
    assert result.stdout.strip().endswith("stopped"), result.stderr[-2000:]
