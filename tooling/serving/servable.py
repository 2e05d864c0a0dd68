"""A loaded model version: its signatures, metadata, and a way to run them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tooling.errors import UserError, one_line
from tooling.model.package import version_dirs
from tooling.serving.errors import ServingError, from_tensorflow

DEFAULT_SIGNATURE = "serving_default"


def latest_version(base_path: Path) -> int:
    """The highest numeric version directory holding saved_model.pb (TF Serving's default)."""
    return int(version_dirs(base_path)[-1].name)


@dataclass
class Servable:
    """One version of one model, loaded with the TF runtime."""

    name: str
    version: int
    path: Path
    signatures: dict[str, object]
    signature_defs: object  # tensorflow.core.protobuf.meta_graph_pb2 SignatureDef map
    _loaded: object = field(repr=False)

    @classmethod
    def load(cls, name: str, base_path: Path) -> Servable:
        import tensorflow as tf
        from tensorflow.core.protobuf import saved_model_pb2

        version = latest_version(base_path)
        path = base_path / str(version)
        try:
            loaded = tf.saved_model.load(str(path))
        except (OSError, ValueError, tf.errors.OpError) as error:
            raise UserError(
                f"{path} is not a SavedModel TensorFlow can load ({one_line(error, 200)}); "
                "export one: `resnet-serving model export --out DIR`"
            ) from error
        proto = saved_model_pb2.SavedModel.FromString((path / "saved_model.pb").read_bytes())
        defs = proto.meta_graphs[0].signature_def
        signatures = {key: loaded.signatures[key] for key in defs if key in loaded.signatures}
        return cls(name, version, path, signatures, defs, loaded)

    def signature(self, signature_name: str) -> object:
        name = signature_name or DEFAULT_SIGNATURE
        if name not in self.signatures:
            raise ServingError(
                "INVALID_ARGUMENT",
                f'Serving signature name: "{name}" not found in signature def',
            )
        return self.signatures[name]

    def input_specs(self, signature_name: str) -> dict[str, object]:
        """Input name → tf.TensorSpec of a signature."""
        return dict(self.signature(signature_name).structured_input_signature[1])

    def run(self, signature_name: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Runs a signature on numpy inputs; bad inputs raise ServingError(INVALID_ARGUMENT)."""
        import tensorflow as tf

        specs = self.input_specs(signature_name)
        missing = sorted(set(specs) - set(inputs))
        unknown = sorted(set(inputs) - set(specs))
        if missing or unknown:
            raise ServingError(
                "INVALID_ARGUMENT",
                f"inputs {unknown or missing} don't match the signature's inputs {sorted(specs)}",
            )
        tensors = {}
        for key, spec in specs.items():
            try:
                tensors[key] = tf.convert_to_tensor(inputs[key], dtype=spec.dtype)
            except (TypeError, ValueError) as error:
                raise ServingError(
                    "INVALID_ARGUMENT", f"input {key} must be {spec.dtype.name}: {error}"
                ) from error
            if not spec.shape.is_compatible_with(tensors[key].shape):
                raise ServingError(
                    "INVALID_ARGUMENT",
                    f"input {key} has shape {tensors[key].shape}, the signature takes {spec.shape}",
                )
        try:
            outputs = self.signature(signature_name)(**tensors)
        except Exception as error:  # TF runtime errors become TF Serving statuses
            raise from_tensorflow(error) from error
        return {key: value.numpy() for key, value in outputs.items()}
