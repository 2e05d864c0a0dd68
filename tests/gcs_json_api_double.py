"""A test double of the Cloud Storage JSON API, in process, for the real google-cloud-storage
client: buckets (insert, get), bucket IAM policies (get, set), objects (multipart upload,
list, delete). Just enough for tooling.gke.bucket and tooling.model.package.upload."""

from __future__ import annotations

import json
import re
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PROJECT_NUMBER = "123456789012"


class GcsState:
    def __init__(self) -> None:
        self.buckets: dict[str, dict] = {}
        self.policies: dict[str, dict] = {}
        self.objects: dict[str, dict[str, bytes]] = {}


def handler_for(state: GcsState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # quiet
            pass

        def reply(self, status: int, body: dict | None = None) -> None:
            data = json.dumps(body or {}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def route(self) -> tuple[str, dict]:
            parsed = urllib.parse.urlparse(self.path)
            return urllib.parse.unquote(parsed.path), dict(urllib.parse.parse_qsl(parsed.query))

        def do_GET(self) -> None:
            path, query = self.route()
            if match := re.fullmatch(r"/storage/v1/b/([^/]+)", path):
                bucket = state.buckets.get(match[1])
                return (
                    self.reply(200, bucket)
                    if bucket
                    else self.reply(404, {"error": {"code": 404, "message": "Not Found"}})
                )
            if match := re.fullmatch(r"/storage/v1/b/([^/]+)/iam", path):
                return self.reply(
                    200,
                    state.policies.setdefault(
                        match[1], {"bindings": [], "etag": "CAE=", "version": 1}
                    ),
                )
            if match := re.fullmatch(r"/storage/v1/b/([^/]+)/o", path):
                prefix = query.get("prefix", "")
                names = sorted(n for n in state.objects.get(match[1], {}) if n.startswith(prefix))
                return self.reply(200, {"items": [{"name": n, "bucket": match[1]} for n in names]})
            return self.reply(404, {"error": {"code": 404, "message": f"no route {path}"}})

        def do_POST(self) -> None:
            path, query = self.route()
            if path == "/storage/v1/b":
                resource = json.loads(self.body())
                resource.update(projectNumber=PROJECT_NUMBER, id=resource["name"])
                state.buckets[resource["name"]] = resource
                return self.reply(200, resource)
            if match := re.fullmatch(r"/upload/storage/v1/b/([^/]+)/o", path):
                raw = self.body()
                boundary = self.headers["Content-Type"].split("boundary=")[1].strip('"').encode()
                parts = [part for part in raw.split(b"--" + boundary) if part.strip(b"-\r\n")]
                metadata = json.loads(parts[0].split(b"\r\n\r\n", 1)[1])
                content = parts[1].split(b"\r\n\r\n", 1)[1].rstrip(b"\r\n")
                name = query.get("name") or metadata["name"]
                state.objects.setdefault(match[1], {})[name] = content
                return self.reply(
                    200, {"name": name, "bucket": match[1], "size": str(len(content))}
                )
            return self.reply(404, {"error": {"code": 404, "message": f"no route {path}"}})

        def do_PUT(self) -> None:
            path, _ = self.route()
            if match := re.fullmatch(r"/storage/v1/b/([^/]+)/iam", path):
                state.policies[match[1]] = {**json.loads(self.body()), "etag": "CAI="}
                return self.reply(200, state.policies[match[1]])
            return self.reply(404, {"error": {"code": 404, "message": f"no route {path}"}})

        def do_DELETE(self) -> None:
            path, _ = self.route()
            if match := re.fullmatch(r"/storage/v1/b/([^/]+)/o/(.+)", path):
                state.objects.get(match[1], {}).pop(match[2], None)
                self.send_response(204)
                self.end_headers()
                return None
            return self.reply(404, {"error": {"code": 404, "message": f"no route {path}"}})

    return Handler


def serve(state: GcsState) -> tuple[ThreadingHTTPServer, str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(state))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"
