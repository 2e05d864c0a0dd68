"""Errors with TF Serving's status codes, and their HTTP equivalents."""

from __future__ import annotations

import re

HTTP_STATUS = {
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "OUT_OF_RANGE": 400,
    "NOT_FOUND": 404,
    "UNIMPLEMENTED": 501,
    "UNAVAILABLE": 503,
    "RESOURCE_EXHAUSTED": 503,
    "INTERNAL": 500,
}
_NOISE = re.compile(
    r"Graph execution error:\s*|Detected at node .*?\n|<stack traces unavailable>\s*|"
    r"\s*\[\[\{\{.*?\}\}\]\]|\s*\[Op:[^\]]*\]|\s*\[\[.*?\]\]"
)


class ServingError(Exception):
    """A request the server refuses; `code` is a gRPC status name (INVALID_ARGUMENT, …)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def http_status(self) -> int:
        return HTTP_STATUS.get(self.code, 500)


def concise(message: str) -> str:
    """TensorFlow's error text without graph-node and stack noise."""
    text = _NOISE.sub(" ", message)
    return " ".join(text.split()).strip()


def from_tensorflow(error: Exception) -> ServingError:
    """Maps a TensorFlow runtime error to the status TF Serving would give."""
    import tensorflow as tf

    if isinstance(error, tf.errors.InvalidArgumentError):
        return ServingError("INVALID_ARGUMENT", concise(error.message))
    if isinstance(error, tf.errors.OpError):
        return ServingError(
            type(error).__name__.removesuffix("Error").upper(), concise(error.message)
        )
    return ServingError("INTERNAL", f"{type(error).__name__}: {error}")
