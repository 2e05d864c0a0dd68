"""PredictionService/Predict's messages in protobuf's wire format, without TensorFlow.

The gRPC user sends a PredictRequest and reads the `probabilities` of a PredictResponse. The
message classes of tensorflow-serving-api import all of TensorFlow (their TensorProto is
TensorFlow's), which takes seconds on a cold machine and, inside a Locust greenlet, outlasts the
worker's heartbeat. These few fields are encoded and decoded here by hand instead, so the user
needs grpcio alone; tests/test_predict_wire.py checks them against the real messages.

Field numbers (tensorflow_serving/apis/predict.proto, model.proto; tensorflow/core/framework/
tensor.proto, tensor_shape.proto):
  PredictRequest  { ModelSpec model_spec = 1; map<string, TensorProto> inputs = 2; }
  PredictResponse { map<string, TensorProto> outputs = 1; ModelSpec model_spec = 2; }
  ModelSpec       { string name = 1; Int64Value version = 2; string signature_name = 3; }
  TensorProto     { DataType dtype = 1; TensorShapeProto tensor_shape = 2;
                    bytes tensor_content = 4; repeated float float_val = 5;
                    repeated bytes string_val = 8; }
  TensorShapeProto { repeated Dim dim = 2; }  Dim { int64 size = 1; }
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

PREDICT_METHOD = "/tensorflow.serving.PredictionService/Predict"
DT_STRING = 7

VARINT, FIXED64, LENGTH_DELIMITED, FIXED32 = 0, 1, 2, 5


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field: a string, bytes or an embedded message."""
    return _varint(number << 3 | LENGTH_DELIMITED) + _varint(len(payload)) + payload


def _varint_field(number: int, value: int) -> bytes:
    return _varint(number << 3 | VARINT) + _varint(value)


def string_tensor(values: list[bytes]) -> bytes:
    """A one-dimensional DT_STRING TensorProto holding `values`."""
    shape = _field(2, _varint_field(1, len(values)))
    return (
        _varint_field(1, DT_STRING)
        + _field(2, shape)
        + b"".join(_field(8, value) for value in values)
    )


def predict_request(
    model_name: str,
    signature_name: str,
    inputs: dict[str, bytes],
    version: int | None = None,
) -> bytes:
    """A serialized PredictRequest; `inputs` maps input names to serialized TensorProtos."""
    spec = _field(1, model_name.encode())
    if version is not None:
        spec += _field(2, _varint_field(1, version))
    spec += _field(3, signature_name.encode())
    entries = b"".join(
        _field(2, _field(1, name.encode()) + _field(2, tensor)) for name, tensor in inputs.items()
    )
    return _field(1, spec) + entries


def _read_varint(buffer: bytes, position: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if position >= len(buffer):
            raise ValueError("truncated protobuf varint")
        byte = buffer[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, position
        shift += 7


def fields(buffer: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """Each (field number, wire type, value) of one message; values of length-delimited fields
    are their bytes, fixed32/fixed64 their raw bytes, varints their integer."""
    position = 0
    while position < len(buffer):
        key, position = _read_varint(buffer, position)
        number, wire_type = key >> 3, key & 7
        if wire_type == VARINT:
            value, position = _read_varint(buffer, position)
            yield number, wire_type, value
        elif wire_type == LENGTH_DELIMITED:
            length, position = _read_varint(buffer, position)
            if position + length > len(buffer):
                raise ValueError("truncated protobuf field")
            yield number, wire_type, buffer[position : position + length]
            position += length
        elif wire_type in (FIXED32, FIXED64):
            size = 4 if wire_type == FIXED32 else 8
            yield number, wire_type, buffer[position : position + size]
            position += size
        else:
            raise ValueError(f"unsupported protobuf wire type {wire_type}")


def response_outputs(response: bytes) -> dict[str, bytes]:
    """A serialized PredictResponse's outputs: name → serialized TensorProto."""
    outputs: dict[str, bytes] = {}
    for number, wire_type, value in fields(response):
        if number == 1 and wire_type == LENGTH_DELIMITED:
            entry = {n: v for n, _, v in fields(value)}
            outputs[bytes(entry.get(1, b"")).decode()] = bytes(entry.get(2, b""))
    return outputs


def float_values(tensor: bytes) -> list[float]:
    """A DT_FLOAT TensorProto's values: packed in tensor_content, or in float_val (packed or
    one field per value)."""
    content = b""
    values: list[float] = []
    for number, wire_type, value in fields(tensor):
        if number == 4 and wire_type == LENGTH_DELIMITED:
            content = bytes(value)
        elif number == 5 and wire_type == LENGTH_DELIMITED:
            values.extend(_little_endian_floats(bytes(value)))
        elif number == 5 and wire_type == FIXED32:
            values.append(struct.unpack("<f", value)[0])
    return _little_endian_floats(content) if content else values


def _little_endian_floats(data: bytes) -> list[float]:
    return list(struct.unpack(f"<{len(data) // 4}f", data))
