"""The exported ResNet101 SavedModel, checked with the TF runtime: layout, signatures, real
predictions on real photos, warmup records, recorded weights, and in-graph image checks."""

from __future__ import annotations

import itertools
import json
import struct
import zlib

import pytest
import tensorflow as tf

from tooling import paths
from tooling.errors import UserError
from tooling.model.export import (
    export_model,
    imagenet_labels,
    read_model_info,
)
from tooling.model.package import package, version_dirs
from tooling.model.signatures import SIGNATURE_INPUTS, TOP_K
from tooling.model.warmup import read_warmup_requests

pytestmark = pytest.mark.slow  # TensorFlow
PHOTOS = sorted(paths.IMAGES_DIR.glob("*.jpg"))


@pytest.fixture(scope="module")
def loaded(exported_model):
    return tf.saved_model.load(str(exported_model / "1"))


def png_header(width: int, height: int) -> bytes:
    """A PNG signature and IHDR chunk claiming width x height (no pixel data follows)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return (
        b"\x89PNG\r\n\x1a\n"
        + struct.pack(">I", len(ihdr))
        + chunk
        + struct.pack(">I", zlib.crc32(chunk))
    )


def test_layout_is_tf_servings(exported_model):
    assert [path.name for path in version_dirs(exported_model)] == ["1"]
    version = exported_model / "1"
    assert (version / "saved_model.pb").is_file()
    assert (version / "variables" / "variables.index").is_file()
    size = sum(p.stat().st_size for p in (version / "variables").iterdir())
    assert 150e6 < size < 200e6, f"ResNet101's 44.7 M float32 weights, once: {size / 1e6:.0f} MB"


def test_signatures_take_encoded_images_and_return_top_k(loaded):
    assert set(SIGNATURE_INPUTS) <= set(loaded.signatures)
    for name, input_name in SIGNATURE_INPUTS.items():
        function = loaded.signatures[name]
        (spec,) = function.structured_input_signature[1].values()
        assert spec.name == input_name and spec.dtype == tf.string
        outputs = function.structured_outputs
        assert outputs["classes"].dtype == tf.int64
        assert outputs["labels"].dtype == tf.string
        assert outputs["probabilities"].dtype == tf.float32
        assert outputs["probabilities"].shape.as_list() == [None, TOP_K]


@pytest.mark.parametrize("signature", sorted(SIGNATURE_INPUTS))
def test_predictions_on_real_photos_are_consistent(loaded, signature):
    function = loaded.signatures[signature]
    images = tf.constant([photo.read_bytes() for photo in PHOTOS])
    outputs = function(**{SIGNATURE_INPUTS[signature]: images})
    labels = imagenet_labels()
    for classes, names, probabilities in zip(
        outputs["classes"].numpy(),
        outputs["labels"].numpy(),
        outputs["probabilities"].numpy(),
        strict=True,
    ):
        assert len(set(classes)) == TOP_K
        assert [labels[c] for c in classes] == [n.decode() for n in names]
        assert all(a >= b for a, b in itertools.pairwise(probabilities))
        assert 0 < probabilities.sum() <= 1.0001


def test_a_batch_gives_the_same_answers_as_one_by_one(loaded):
    function = loaded.signatures["serving_default"]
    photos = [photo.read_bytes() for photo in PHOTOS]
    batch = function(image_bytes=tf.constant(photos))["probabilities"].numpy()
    for i, photo in enumerate(photos):
        alone = function(image_bytes=tf.constant([photo]))["probabilities"].numpy()[0]
        assert alone == pytest.approx(batch[i], abs=1e-4)


def test_png_input_decodes_in_the_graph(loaded):
    photo = tf.io.decode_jpeg(PHOTOS[0].read_bytes())
    png = tf.io.encode_png(photo).numpy()
    outputs = loaded.signatures["serving_default"](image_bytes=tf.constant([png]))
    assert outputs["probabilities"].shape == (1, TOP_K)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty image"),
        (b"just some text, not an image", "Unknown image file format"),
        ("truncated", "Invalid JPEG data"),
        (png_header(100_000, 100_000), "image too large"),
    ],
    ids=["empty", "text", "truncated-jpeg", "huge-png-header"],
)
def test_bad_images_raise_invalid_argument(loaded, data, message):
    if data == "truncated":
        data = PHOTOS[0].read_bytes()[:2000]
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        loaded.signatures["serving_default"](image_bytes=tf.constant([data]))


def test_warmup_file_holds_predict_logs_for_both_signatures(exported_model):
    logs = read_warmup_requests(
        exported_model / "1" / "assets.extra" / "tf_serving_warmup_requests"
    )
    assert 0 < len(logs) <= 1000
    signatures = set()
    for log in logs:
        request = log.predict_log.request
        assert request.model_spec.name == "image_classifier"
        signatures.add(request.model_spec.signature_name)
        (name,) = request.inputs
        assert name == SIGNATURE_INPUTS[request.model_spec.signature_name]
        images = tf.make_ndarray(request.inputs[name])
        assert images[0] in {photo.read_bytes() for photo in PHOTOS}
    assert signatures == set(SIGNATURE_INPUTS)


def test_random_weights_are_recorded_not_hidden(exported_model):
    info = read_model_info(exported_model / "1")
    assert info.weights == "random" and info.seed == 0
    assert "not meaningful" in info.weights_note
    assert (
        json.loads((exported_model / "1" / "assets.extra" / "model_info.json").read_text())[
            "architecture"
        ]
        == "ResNet101"
    )


def test_export_refuses_to_overwrite_a_version(exported_model):
    with pytest.raises(UserError, match="--force"):
        export_model(exported_model.parent, version=1, weights="random")


def test_missing_weights_file_says_what_to_use(tmp_path):
    with pytest.raises(UserError, match="imagenet, random"):
        export_model(tmp_path, weights=str(tmp_path / "missing.h5"))


def test_package_holds_the_version_directories(exported_model, tmp_path):
    import tarfile

    tarball = package(exported_model, tmp_path / "model.tar.gz")
    with tarfile.open(tarball) as tar:
        names = set(tar.getnames())
    assert {"1/saved_model.pb", "1/variables/variables.index"} <= names
    with pytest.raises(UserError, match=r"\.tar\.gz"):
        package(exported_model, tmp_path / "model.zip")
