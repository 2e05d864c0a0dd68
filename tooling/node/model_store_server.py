"""The model store's server process: one file over https (stdlib http.server and ssl), GET and
HEAD of its one path, 404 for any other, no ranges; every request logged to stderr.

Run by `tooling.node.model_store.ModelStore` (inside the node's network namespace):
`python -m tooling.node.model_store_server --cert C --key K --file F --path /F.tar.gz
--address A --port P`. It prints READY_LINE once it listens, and exits 0 on SIGTERM.
"""

from __future__ import annotations

import argparse
import http.server
import shutil
import signal
import ssl
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

READY_LINE = "model-store: serving"


def handler_for(served: Path, url_path: str) -> type[http.server.BaseHTTPRequestHandler]:
    """A request handler that serves `served` at `url_path` and nothing else."""

    class OneFile(http.server.BaseHTTPRequestHandler):
        server_version = "resnet-serving-model-store"
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self._answer(body=True)

        def do_HEAD(self) -> None:
            self._answer(body=False)

        def _answer(self, body: bool) -> None:
            if self.path.split("?", 1)[0] != url_path:
                self.send_error(404, f"only {url_path} is here")
                return
            size = served.stat().st_size
            self.send_response(200)
            self.send_header("Content-Type", "application/gzip")
            self.send_header("Content-Length", str(size))
            self.end_headers()
            if body:
                with served.open("rb") as source:
                    shutil.copyfileobj(source, self.wfile, 1 << 20)

        def log_message(self, format: str, *args: object) -> None:
            sys.stderr.write(f"model-store: {self.address_string()} {format % args}\n")
            sys.stderr.flush()

    return OneFile


def tls_server(
    address: str, port: int, cert: Path, key: Path, served: Path, url_path: str
) -> http.server.ThreadingHTTPServer:
    """The bound server, its socket wrapped in TLS with `cert` and `key`."""
    server = http.server.ThreadingHTTPServer((address, port), handler_for(served, url_path))
    server.daemon_threads = True
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    return server


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cert", type=Path, required=True, help="the server's PEM certificate")
    parser.add_argument("--key", type=Path, required=True, help="its PEM private key")
    parser.add_argument("--file", type=Path, required=True, help="the one file served")
    parser.add_argument("--path", required=True, help="its URL path, e.g. /resnet101.tar.gz")
    parser.add_argument("--address", required=True, help="the address to listen on")
    parser.add_argument("--port", type=int, required=True, help="the port to listen on")
    args = parser.parse_args(argv)
    if not args.file.is_file():
        print(f"model-store: no file {args.file}", file=sys.stderr)
        return 2
    server = tls_server(args.address, args.port, args.cert, args.key, args.file, args.path)

    def stop(signum: int, _frame: object) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    host, port = server.server_address[:2]
    print(f"{READY_LINE} {args.file} at https://{host}:{port}{args.path}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    print("model-store: stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
