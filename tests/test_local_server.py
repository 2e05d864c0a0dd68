"""`resnet-serving serve-local` against TF Serving's documented REST and gRPC shapes, with the
official tensorflow-serving-api client, real photos, and bad input that must not hurt it."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
import tensorflow as tf
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from tooling import paths
from tooling.model.signatures import TOP_K

pytestmark = pytest.mark.slow  # TensorFlow and the model server
PHOTOS = sorted(paths.IMAGES_DIR.glob("*.jpg"))
MODEL = "image_classifier"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def call(server, path: str, body: object = None, raw: bytes | None = None) -> tuple[int, dict]:
    """GET (no body) or POST JSON to the REST API; returns (HTTP status, JSON body)."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    request = urllib.request.Request(
        server.rest + path, data=data, method="POST" if data is not None else "GET"
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def check_top_k(prediction: dict) -> None:
    assert len(prediction["classes"]) == len(prediction["labels"]) == TOP_K
    probabilities = prediction["probabilities"]
    assert probabilities == sorted(probabilities, reverse=True)


@pytest.fixture(scope="module")
def stub(local_server):
    channel = grpc.insecure_channel(local_server.grpc)
    yield prediction_service_pb2_grpc.PredictionServiceStub(channel)
    channel.close()


def test_model_status_says_available(local_server):
    expected = {
        "model_version_status": [
            {
                "version": "1",
                "state": "AVAILABLE",
                "status": {"error_code": "OK", "error_message": ""},
            }
        ]
    }
    assert call(local_server, f"/v1/models/{MODEL}") == (200, expected)
    assert call(local_server, f"/v1/models/{MODEL}/versions/1") == (200, expected)


def test_unknown_model_and_version_are_404(local_server):
    status, body = call(local_server, "/v1/models/nope")
    assert status == 404 and "Servable not found" in body["error"]
    status, body = call(
        local_server, f"/v1/models/{MODEL}/versions/7:predict", {"instances": ["x"]}
    )
    assert status == 404 and "Specific(image_classifier, 7)" in body["error"]


def test_metadata_lists_both_signatures(local_server):
    status, body = call(local_server, f"/v1/models/{MODEL}/metadata")
    assert status == 200
    assert body["model_spec"] == {"name": MODEL, "signature_name": "", "version": "1"}
    signatures = body["metadata"]["signature_def"]["signature_def"]
    assert signatures["serving_default"]["inputs"]["image_bytes"]["dtype"] == "DT_STRING"
    assert signatures["serving_preprocess"]["inputs"]["raw_images"]["dtype"] == "DT_STRING"
    assert set(signatures["serving_default"]["outputs"]) == {"classes", "labels", "probabilities"}


def test_row_format_predict_with_b64_images(local_server):
    body = {"instances": [{"b64": b64(photo.read_bytes())} for photo in PHOTOS]}
    status, response = call(local_server, f"/v1/models/{MODEL}:predict", body)
    assert status == 200, response
    assert len(response["predictions"]) == len(PHOTOS)
    for prediction in response["predictions"]:
        check_top_k(prediction)


def test_the_labs_request_body_works_unchanged(local_server):
    body = {
        "signature_name": "serving_preprocess",
        "instances": [{"b64": b64(PHOTOS[0].read_bytes())}],
    }
    status, response = call(local_server, f"/v1/models/{MODEL}/versions/1:predict", body)
    assert status == 200, response
    check_top_k(response["predictions"][0])


def test_columnar_format_answers_with_outputs(local_server):
    photo = PHOTOS[1].read_bytes()
    status, columnar = call(
        local_server,
        f"/v1/models/{MODEL}:predict",
        {"inputs": {"image_bytes": [{"b64": b64(photo)}]}},
    )
    assert status == 200, columnar
    _, row = call(local_server, f"/v1/models/{MODEL}:predict", {"instances": [{"b64": b64(photo)}]})
    assert columnar["outputs"]["classes"] == [row["predictions"][0]["classes"]]
    assert columnar["outputs"]["probabilities"][0] == pytest.approx(
        row["predictions"][0]["probabilities"]
    )


BAD_REQUESTS = [
    ("empty-image", {"instances": [{"b64": ""}]}, None, "empty image"),
    (
        "text",
        {"instances": [{"b64": b64(b"hello, not a photo")}]},
        None,
        "Unknown image file format",
    ),
    ("truncated-jpeg", {"instances": [{"b64": b64(PHOTOS[0].read_bytes()[:1500])}]}, None, "JPEG"),
    (
        "huge-dimensions",
        {
            "instances": [
                {
                    "b64": b64(
                        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x01\x86\xa0\x00\x01\x86\xa0\x08\x02\x00\x00\x00"
                    )
                }
            ]
        },
        None,
        "image too large",
    ),
    ("unknown-signature", {"signature_name": "nope", "instances": ["x"]}, None, "nope"),
    ("malformed-json", None, b'{"instances": [', "JSON Parse error"),
    ("no-instances", {"examples": []}, None, "'instances'"),
    ("bad-base64", {"instances": [{"b64": "%%%"}]}, None, "base64"),
]


@pytest.mark.parametrize(
    ("body", "raw", "message"), [c[1:] for c in BAD_REQUESTS], ids=[c[0] for c in BAD_REQUESTS]
)
def test_bad_input_is_a_400_and_the_server_keeps_answering(local_server, body, raw, message):
    status, response = call(local_server, f"/v1/models/{MODEL}:predict", body, raw)
    assert status == 400, response
    assert set(response) == {"error"} and message in response["error"]
    status, _ = call(
        local_server,
        f"/v1/models/{MODEL}:predict",
        {"instances": [{"b64": b64(PHOTOS[0].read_bytes())}]},
    )
    assert status == 200


def test_one_bad_image_in_a_batch_fails_only_its_own_request(local_server):
    good = {"instances": [{"b64": b64(PHOTOS[0].read_bytes())}]}
    bad = {"instances": [{"b64": b64(b"garbage")}]}
    with ThreadPoolExecutor(8) as pool:
        results = list(
            pool.map(
                lambda body: call(local_server, f"/v1/models/{MODEL}:predict", body),
                [good, bad] * 4,
            )
        )
    assert [status for status, _ in results] == [200, 400] * 4


def test_concurrent_requests_get_their_own_answers(local_server):
    """Batching joins concurrent requests; each must still get its own photo's prediction."""
    singles = [
        call(
            local_server,
            f"/v1/models/{MODEL}:predict",
            {"instances": [{"b64": b64(p.read_bytes())}]},
        )[1]
        for p in PHOTOS
    ]
    bodies = [
        {"instances": [{"b64": b64(PHOTOS[i % len(PHOTOS)].read_bytes())}]} for i in range(12)
    ]
    with ThreadPoolExecutor(12) as pool:
        results = list(
            pool.map(lambda body: call(local_server, f"/v1/models/{MODEL}:predict", body), bodies)
        )
    for i, (status, response) in enumerate(results):
        assert status == 200
        expected = singles[i % len(PHOTOS)]["predictions"][0]
        assert response["predictions"][0]["classes"] == expected["classes"]
        assert response["predictions"][0]["probabilities"] == pytest.approx(
            expected["probabilities"], abs=1e-4
        )


def test_official_grpc_client_predicts(stub):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = MODEL
    request.model_spec.signature_name = "serving_default"
    request.inputs["image_bytes"].CopyFrom(tf.make_tensor_proto([PHOTOS[2].read_bytes()]))
    response = stub.Predict(request, timeout=60)
    assert response.model_spec.name == MODEL and response.model_spec.version.value == 1
    assert set(response.outputs) == {"classes", "labels", "probabilities"}
    probabilities = tf.make_ndarray(response.outputs["probabilities"])[0]
    assert probabilities.shape == (TOP_K,) and list(probabilities) == sorted(
        probabilities, reverse=True
    )
    request.output_filter.append("labels")
    assert set(stub.Predict(request, timeout=60).outputs) == {"labels"}


def test_grpc_metadata_and_status(local_server, stub):
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = MODEL
    request.metadata_field.append("signature_def")
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    stub.GetModelMetadata(request, timeout=30).metadata["signature_def"].Unpack(signature_map)
    assert {"serving_default", "serving_preprocess"} <= set(signature_map.signature_def)
    with grpc.insecure_channel(local_server.grpc) as channel:
        status_request = get_model_status_pb2.GetModelStatusRequest()
        status_request.model_spec.name = MODEL
        response = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(
            status_request, timeout=30
        )
    (version,) = response.model_version_status
    assert (
        version.version == 1 and version.state == get_model_status_pb2.ModelVersionStatus.AVAILABLE
    )


@pytest.mark.parametrize(
    ("model", "image", "code"),
    [
        (MODEL, b"junk", grpc.StatusCode.INVALID_ARGUMENT),
        ("nope", PHOTOS[0].read_bytes(), grpc.StatusCode.NOT_FOUND),
    ],
    ids=["bad-image", "unknown-model"],
)
def test_grpc_errors_use_tf_serving_status_codes(stub, model, image, code):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.inputs["image_bytes"].CopyFrom(tf.make_tensor_proto([image]))
    with pytest.raises(grpc.RpcError) as failure:
        stub.Predict(request, timeout=60)
    assert failure.value.code() == code


def test_prometheus_metrics_count_requests(local_server):
    with urllib.request.urlopen(
        local_server.rest + "/monitoring/prometheus/metrics", timeout=10
    ) as response:
        text = response.read().decode()
    ok = [
        line
        for line in text.splitlines()
        if line.startswith(
            ':tensorflow:serving:request_count{model_name="image_classifier",status="OK"}'
        )
    ]
    assert ok and int(ok[0].rsplit(" ", 1)[1]) > 0
    assert ":tensorflow:serving:request_latency_bucket" in text


MIXED_CLIENTS = 16
MIXED_TURNS = 4  # per client, good and bad in turn: 64 requests, 32 of them predictions


def test_mixed_good_and_bad_requests_from_16_clients_at_once(local_server):
    """Every good request is answered and every bad one gets its 400, while 16 clients send
    both at once. (Memory over a long run: bench/serving_soak.py.)"""
    good = {"instances": [{"b64": b64(PHOTOS[0].read_bytes())}]}

    def client(index: int) -> list[tuple[str, int, bool]]:
        outcomes = []  # (kind, status, body as expected)
        for turn in range(index, index + MIXED_TURNS):
            if turn % 2:
                _, body, raw, message = BAD_REQUESTS[turn % len(BAD_REQUESTS)]
                status, response = call(local_server, f"/v1/models/{MODEL}:predict", body, raw)
                outcomes.append(("bad", status, message in response.get("error", "")))
            else:
                status, response = call(local_server, f"/v1/models/{MODEL}:predict", good)
                outcomes.append(("good", status, len(response.get("predictions", [])) == 1))
        return outcomes

    with ThreadPoolExecutor(MIXED_CLIENTS) as pool:
        outcomes = [o for found in pool.map(client, range(MIXED_CLIENTS)) for o in found]
    goods = [o for o in outcomes if o[0] == "good"]
    bads = [o for o in outcomes if o[0] == "bad"]
    assert len(goods) == len(bads) == MIXED_CLIENTS * MIXED_TURNS // 2
    assert all(status == 200 and ok for _, status, ok in goods), goods
    assert all(status == 400 and ok for _, status, ok in bads), bads
