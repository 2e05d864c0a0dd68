"""Exports Keras' ResNet101 as a SavedModel in TF Serving's layout: DIR/<name>/<version>/.

Signatures (both take encoded images as tf.string, decoded in the graph):
- `serving_default`, input `image_bytes`: the project's clients.
- `serving_preprocess`, input `raw_images`: the lab's request body, unchanged.
Both return the top-k `classes` (ImageNet ids), `labels` (class names) and `probabilities`.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from tooling import paths
from tooling.errors import UserError, one_line
from tooling.model.signatures import SIGNATURE_INPUTS, TOP_K

MODEL_INFO_FILE = "model_info.json"
WEIGHTS_HINT = "use --weights imagenet, random or the path of a .h5/.weights.h5 file"
# what keras' Model.load_weights reads (.weights.h5 ends in .h5)
WEIGHTS_SUFFIXES = (".h5", ".hdf5", ".keras", ".weights.json")


@dataclass(frozen=True)
class ModelInfo:
    """What was exported, recorded in <version>/assets.extra/model_info.json."""

    architecture: str
    weights: str
    seed: int | None
    weights_note: str
    top_k: int
    signatures: dict[str, str]
    tensorflow: str
    exported_at: str


def imagenet_labels() -> list[str]:
    labels = (paths.DATA_DIR / "imagenet_labels.txt").read_text().splitlines()
    if len(labels) != 1000:
        raise ValueError(f"expected 1000 ImageNet labels, found {len(labels)}")
    return labels


def check_export(out: Path, name: str, version: int, weights: str, seed: int, force: bool) -> None:
    """The export's inputs, checked in milliseconds, before TensorFlow is imported: each wrong
    one is a UserError saying what to give instead."""
    if version < 1:
        raise UserError(f"--version {version}: give a version number of 1 or more")
    if not name or name in (".", "..") or "/" in name:
        raise UserError(f"--name {name!r}: give a model name without '/' (e.g. image_classifier)")
    if weights == "random" and not 0 <= seed < 2**32:
        raise UserError(f"--seed {seed}: give a seed from 0 to {2**32 - 1}")
    check_weights(weights)
    paths.check_writable_folder("--out", out / name)
    version_dir = out / name / str(version)
    if version_dir.exists() and not force:
        raise UserError(
            f"{version_dir} already exists; pick another --version or pass --force to replace it"
        )


def check_weights(weights: str) -> None:
    """--weights: imagenet, random, or a weights file Keras reads, there and readable."""
    if weights in ("imagenet", "random"):
        return
    path = Path(weights)
    if not path.is_file():
        raise UserError(f"weights file {path} not found; {WEIGHTS_HINT}")
    if not os.access(path, os.R_OK):
        raise UserError(f"weights file {path} is not readable by you; {WEIGHTS_HINT}")
    if not path.name.endswith(WEIGHTS_SUFFIXES):
        raise UserError(
            f"weights file {path}: Keras reads {', '.join(WEIGHTS_SUFFIXES)} files; {WEIGHTS_HINT}"
        )


def build_resnet101(weights: str, seed: int) -> tuple[object, str]:
    """ResNet101 with `imagenet`, `random` (seeded) or a local weights file; returns a note
    saying which weights it really has."""
    import keras

    if weights == "random":
        keras.utils.set_random_seed(seed)
        model = keras.applications.ResNet101(weights=None)
        return model, f"seeded random weights (seed {seed}); predictions are not meaningful"
    if weights == "imagenet":
        try:
            model = keras.applications.ResNet101(weights="imagenet")
        except Exception as error:
            raise UserError(
                f"could not load ImageNet weights ({type(error).__name__}: {error}); "
                "without network access use --weights random, or --weights PATH to a .h5 file"
            ) from error
        return model, "ImageNet weights (keras.applications)"
    path = Path(weights)  # checked by check_export
    model = keras.applications.ResNet101(weights=None)
    try:
        model.load_weights(path)
    except (OSError, ValueError) as error:
        raise UserError(
            f"weights file {path} does not fit ResNet101 ({one_line(error, 200)}); give weights "
            "saved from keras.applications.ResNet101, or use --weights imagenet or random"
        ) from error
    return model, f"weights from {path.name}"


def serving_functions(model: object) -> dict[str, object]:
    """The signature functions: encoded images → top-k classes, labels, probabilities."""
    import tensorflow as tf

    from tooling.model.preprocess import decode_batch

    labels = tf.constant(imagenet_labels())

    def classify(images: tf.Tensor) -> dict[str, tf.Tensor]:
        probabilities = model(decode_batch(images), training=False)
        top = tf.math.top_k(probabilities, k=TOP_K)
        return {
            "classes": tf.cast(top.indices, tf.int64),
            "labels": tf.gather(labels, top.indices),
            "probabilities": top.values,
        }

    functions = {}
    for signature, input_name in SIGNATURE_INPUTS.items():
        spec = tf.TensorSpec([None], tf.string, name=input_name)
        functions[signature] = tf.function(
            lambda images, _input=input_name: classify(images), input_signature=[spec]
        )
    return functions


def export_model(
    out: Path,
    name: str = "image_classifier",
    version: int = 1,
    weights: str = "random",
    seed: int = 0,
    force: bool = False,
) -> tuple[Path, ModelInfo]:
    """Writes DIR/<name>/<version>/ (saved_model.pb, variables/, assets.extra/) and returns it."""
    check_export(out, name, version, weights, seed, force)
    import tensorflow as tf

    from tooling.model.warmup import write_warmup_requests

    version_dir = out / name / str(version)
    model, note = build_resnet101(weights, seed)
    functions = serving_functions(model)
    module = tf.Module()
    module.model = model  # tracked once: the variables are written once
    signatures = {name: function.get_concrete_function() for name, function in functions.items()}
    if version_dir.exists():
        shutil.rmtree(version_dir)
    tf.saved_model.save(module, str(version_dir), signatures=signatures)

    info = ModelInfo(
        architecture="ResNet101",
        weights="random"
        if weights == "random"
        else ("imagenet" if weights == "imagenet" else "file"),
        seed=seed if weights == "random" else None,
        weights_note=note,
        top_k=TOP_K,
        signatures=dict(SIGNATURE_INPUTS),
        tensorflow=tf.__version__,
        exported_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    )
    extra = version_dir / "assets.extra"
    extra.mkdir(exist_ok=True)
    (extra / MODEL_INFO_FILE).write_text(json.dumps(asdict(info), indent=2) + "\n")
    write_warmup_requests(extra / "tf_serving_warmup_requests", name)
    return version_dir, info


def read_model_info(version_dir: Path) -> ModelInfo:
    data = json.loads((version_dir / "assets.extra" / MODEL_INFO_FILE).read_text())
    return ModelInfo(**data)
