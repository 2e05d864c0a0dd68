"""TF Serving's REST JSON ↔ numpy: row (`instances`) and columnar (`inputs`) requests,
`{"b64": …}` binary values, and `predictions` / `outputs` responses."""

from __future__ import annotations

import base64
import binascii

import numpy as np

from tooling.serving.errors import ServingError

Inputs = dict[str, np.ndarray]


def _decode_value(value: object) -> object:
    """Replaces {"b64": …} objects with bytes, recursively."""
    if isinstance(value, dict):
        if set(value) == {"b64"}:
            try:
                return base64.b64decode(value["b64"], validate=True)
            except (binascii.Error, TypeError) as error:
                raise ServingError(
                    "INVALID_ARGUMENT", f"invalid base64 in b64 value: {error}"
                ) from error
        raise ServingError("INVALID_ARGUMENT", 'objects other than {"b64": …} are not valid values')
    if isinstance(value, list):
        return [_decode_value(item) for item in value]
    return value


def _array(values: object, dtype: object, name: str) -> np.ndarray:
    if dtype.name == "string":

        def to_bytes(item: object) -> object:
            if isinstance(item, list):
                return [to_bytes(i) for i in item]
            if isinstance(item, bytes):
                return item
            if isinstance(item, str):
                return item.encode()
            raise ServingError("INVALID_ARGUMENT", f"input {name} takes strings, got {item!r:.50}")

        return np.array(to_bytes(values), dtype=object)
    try:
        return np.array(values, dtype=dtype.as_numpy_dtype)
    except (TypeError, ValueError) as error:
        raise ServingError("INVALID_ARGUMENT", f"input {name}: {error}") from error


def request_inputs(body: dict, specs: dict[str, object]) -> tuple[Inputs, bool]:
    """Tensors from a predict request body; the bool says whether it was row format."""
    if ("instances" in body) == ("inputs" in body):
        raise ServingError(
            "INVALID_ARGUMENT", "Missing 'inputs' or 'instances' key (exactly one is required)"
        )
    names = list(specs)
    if "instances" in body:
        instances = body["instances"]
        if not isinstance(instances, list) or not instances:
            raise ServingError("INVALID_ARGUMENT", "'instances' must be a non-empty list")
        decoded = [_decode_value(instance) for instance in instances]
        if len(names) == 1 and not all(
            isinstance(row, dict) and set(row) == {names[0]} for row in instances
        ):
            columns = {names[0]: decoded}
        else:
            if not all(isinstance(row, dict) for row in instances):
                raise ServingError(
                    "INVALID_ARGUMENT",
                    f"each instance must be an object with the inputs {names}",
                )
            columns = {name: [row.get(name) for row in decoded] for name in names}
            for name, column in columns.items():
                if any(value is None for value in column):
                    raise ServingError("INVALID_ARGUMENT", f"an instance lacks input {name}")
        return {
            name: _array(column, specs[name].dtype, name) for name, column in columns.items()
        }, True
    given = body["inputs"]
    if not isinstance(given, dict) or (len(names) == 1 and set(given) != {names[0]}):
        given = {names[0]: given} if len(names) == 1 else given
    if not isinstance(given, dict):
        raise ServingError("INVALID_ARGUMENT", f"'inputs' must name the inputs {names}")
    return {
        name: _array(_decode_value(value), specs[name].dtype, name) for name, value in given.items()
    }, False


def _jsonable(value: np.ndarray, name: str) -> object:
    if value.dtype == object:

        def convert(item: object) -> object:
            if isinstance(item, np.ndarray):
                return [convert(i) for i in item]
            if name.endswith("_bytes"):
                return {"b64": base64.b64encode(item).decode()}
            try:
                return item.decode("utf-8")
            except UnicodeDecodeError:
                return {"b64": base64.b64encode(item).decode()}

        return convert(value)
    return value.tolist()


def response_body(outputs: Inputs, row_format: bool) -> dict:
    """`{"predictions": [...]}` (row) or `{"outputs": ...}` (columnar), as TF Serving answers."""
    names = sorted(outputs)
    if not row_format:
        if len(names) == 1:
            return {"outputs": _jsonable(outputs[names[0]], names[0])}
        return {"outputs": {name: _jsonable(outputs[name], name) for name in names}}
    columns = {name: _jsonable(outputs[name], name) for name in names}
    rows = len(next(iter(columns.values())))
    if len(names) == 1:
        return {"predictions": columns[names[0]]}
    return {"predictions": [{name: columns[name][i] for name in names} for i in range(rows)]}
