"""TF Serving's REST API (port 8501) over the standard library's threading HTTP server."""

from __future__ import annotations

import json
import re
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from google.protobuf import json_format

from tooling.serving import json_codec
from tooling.serving.core import ModelServer
from tooling.serving.errors import ServingError

MODEL_PATH = re.compile(
    r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>[^/:]+))?"
    r"(?P<method>/metadata|:predict|:classify|:regress)?$"
)
MAX_BODY_BYTES = 64 * 1024 * 1024


def status_body(name: str, version: int) -> dict:
    return {
        "model_version_status": [
            {
                "version": str(version),
                "state": "AVAILABLE",
                "status": {"error_code": "OK", "error_message": ""},
            }
        ]
    }


class RestHandler(BaseHTTPRequestHandler):
    """One request; `server.model_server` holds the models."""

    protocol_version = "HTTP/1.1"
    server_version = "resnet-serving-local"
    monitoring_path: str | None = None

    def log_message(self, format: str, *args: object) -> None:  # quiet like TF Serving
        return

    @property
    def model_server(self) -> ModelServer:
        return self.server.model_server  # type: ignore[attr-defined]

    def _send(self, status: int, body: dict | str, content_type: str = "application/json") -> None:
        data = (json.dumps(body) if isinstance(body, dict) else body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, error: ServingError) -> None:
        self._send(error.http_status, {"error": error.message})

    def _route(self) -> tuple[str, int | None, str]:
        match = MODEL_PATH.match(self.path.split("?", 1)[0])
        if not match:
            raise ServingError("NOT_FOUND", f"Malformed request: {self.command} {self.path}")
        version = match["version"]
        if version is not None and not version.isdigit():
            raise ServingError("INVALID_ARGUMENT", f"version must be a number, got {version!r}")
        return match["name"], int(version) if version else None, match["method"] or ""

    def do_GET(self) -> None:
        try:
            if self.monitoring_path and self.path == self.monitoring_path:
                self._send(
                    200, self.model_server.metrics.prometheus_text(), "text/plain; version=0.0.4"
                )
                return
            name, version, method = self._route()
            servable = self.model_server.servable(name, version)
            if method == "":
                self._send(200, status_body(name, servable.version))
            elif method == "/metadata":
                from tensorflow_serving.apis import get_model_metadata_pb2

                signature_map = get_model_metadata_pb2.SignatureDefMap()
                for key, value in servable.signature_defs.items():
                    signature_map.signature_def[key].CopyFrom(value)
                self._send(
                    200,
                    {
                        "model_spec": {
                            "name": name,
                            "signature_name": "",
                            "version": str(servable.version),
                        },
                        "metadata": {
                            "signature_def": json_format.MessageToDict(
                                signature_map, preserving_proto_field_name=True
                            )
                        },
                    },
                )
            else:
                raise ServingError("INVALID_ARGUMENT", f"{method} needs POST")
        except ServingError as error:
            self._error(error)

    def do_POST(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY_BYTES:
                raise ServingError("INVALID_ARGUMENT", f"request body over {MAX_BODY_BYTES} bytes")
            raw = self.rfile.read(length)
            name, version, method = self._route()
            if method in (":classify", ":regress"):
                raise ServingError(
                    "UNIMPLEMENTED", f"{method[1:]} is not supported by this model; use :predict"
                )
            if method != ":predict":
                raise ServingError("NOT_FOUND", f"Malformed request: POST {self.path}")
            try:
                body = json.loads(raw)
            except (UnicodeDecodeError, json.JSONDecodeError) as error:
                raise ServingError("INVALID_ARGUMENT", f"JSON Parse error: {error}") from error
            if not isinstance(body, dict):
                raise ServingError("INVALID_ARGUMENT", "JSON Value: the request must be an object")
            signature = body.get("signature_name") or "serving_default"
            servable = self.model_server.servable(name, version)
            inputs, row_format = json_codec.request_inputs(body, servable.input_specs(signature))
            _, outputs = self.model_server.predict(name, version, signature, inputs, "predict")
            self._send(200, json_codec.response_body(outputs, row_format))
        except ServingError as error:
            self._error(error)


def make_rest_server(
    model_server: ModelServer, port: int, monitoring_path: str | None
) -> ThreadingHTTPServer:
    """An HTTP server on 0.0.0.0:`port` (port 0 picks a free one) for `model_server`."""
    handler = type("Handler", (RestHandler,), {"monitoring_path": monitoring_path})
    server = ThreadingHTTPServer(("0.0.0.0", port), handler)
    server.daemon_threads = True
    server.model_server = model_server  # type: ignore[attr-defined]
    return server
