"""Exports Keras' ResNet101 as a SavedModel in TF Serving's layout: DIR/<name>/<version>/.

Signatures (both take encoded images as tf.string, decoded in the graph):
- `serving_default`, input `image_bytes`: the project's clients.
- `serving_preprocess`, input `raw_images`: the lab's request body, unchanged.
Both return the top-k `classes` (ImageNet ids), `labels` (class names) and `probabilities`.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from tooling import paths
from tooling.errors import UserError
from tooling.model.signatures import SIGNATURE_INPUTS, TOP_K

MODEL_INFO_FILE = "model_info.json"


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
    path = Path(weights)
    if not path.is_file():
        raise UserError(
            f"weights file {path} not found; "
            "use --weights imagenet, random or the path of a .h5/.weights.h5 file"
        )
    model = keras.applications.ResNet101(weights=None)
    model.load_weights(path)
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
    import tensorflow as tf

    from tooling.model.warmup import write_warmup_requests

    version_dir = out / name / str(version)
    if version_dir.exists() and not force:
        raise UserError(
            f"{version_dir} already exists; pick another --version or pass --force to replace it"
        )
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
