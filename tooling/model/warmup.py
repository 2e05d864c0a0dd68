"""TF Serving warmup records: <version>/assets.extra/tf_serving_warmup_requests.

A TFRecord file of PredictionLog messages that TF Serving replays when it loads the model, so
a freshly scaled-out replica answers its first real request at full speed.
"""

from __future__ import annotations

from pathlib import Path

from tooling import paths
from tooling.model.signatures import SIGNATURE_INPUTS

WARMUP_BATCH_SIZES = (1, 4)


def warmup_logs(model_name: str) -> list[object]:
    """PredictionLogs for both signatures, at each warmup batch size, with the sample photos."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

    photos = [path.read_bytes() for path in sorted(paths.IMAGES_DIR.glob("*.jpg"))]
    logs = []
    for signature, input_name in SIGNATURE_INPUTS.items():
        for batch_size in WARMUP_BATCH_SIZES:
            batch = [photos[i % len(photos)] for i in range(batch_size)]
            request = predict_pb2.PredictRequest()
            request.model_spec.name = model_name
            request.model_spec.signature_name = signature
            request.inputs[input_name].CopyFrom(tf.make_tensor_proto(batch, dtype=tf.string))
            logs.append(
                prediction_log_pb2.PredictionLog(
                    predict_log=prediction_log_pb2.PredictLog(request=request)
                )
            )
    return logs


def write_warmup_requests(path: Path, model_name: str) -> int:
    """Writes the warmup file; returns how many records it holds."""
    import tensorflow as tf

    logs = warmup_logs(model_name)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for log in logs:
            writer.write(log.SerializeToString())
    return len(logs)


def read_warmup_requests(path: Path) -> list[object]:
    """Parses the warmup file back into PredictionLog messages."""
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    return [
        prediction_log_pb2.PredictionLog.FromString(record.numpy())
        for record in tf.data.TFRecordDataset(str(path))
    ]
