"""The replica fleet's front: one local HTTP server standing for the model Service, speaking
TF Serving's REST API. Each predict goes to one ready endpoint's simulated replica (as
kube-proxy sends it) and is answered once that replica has done the request's work.

No model runs here: every answer carries the served model's response shape (top-5 `classes`,
`labels`, `probabilities`) so the locustfile's checks run, with labels that say so, and an
`X-Simulated-Replica` header naming the pod. With no ready endpoint the answer is a 503; a
request in flight when its replica is killed gets its connection reset. The locustfile's gRPC
user is not served (the rehearsal's Locust runs the REST user).

Each replica's TF Serving metrics are served at its pod's own path on the same port,
`/pods/<namespace>/<pod>` + the pod's metrics path (`pod_metrics_url`): Prometheus finds the
pods through the API and is relabelled to scrape them here (tooling.rehearsal.request_metrics),
never at a pod's simulated IP. A pod with no replica (not ready yet, or its replica died) is a
404, as a target that is gone; its series go with it.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from aiohttp import web

from tooling.fleet.endpoints import Fleet
from tooling.fleet.sharing import ReplicaKilled
from tooling.model.signatures import TOP_K
from tooling.names import MODEL_NAME

PODS_PREFIX = "/pods"  # each pod's own metrics: /pods/<namespace>/<pod><its metrics path>
SIMULATED = {
    "classes": list(range(TOP_K)),
    "labels": ["(simulated replica: no model ran)"] * TOP_K,
    "probabilities": [1.0 / TOP_K] * TOP_K,
}


def error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def instances_in(body: bytes) -> int | None:
    """How many predictions the request asks for (row or columnar form); None if malformed."""
    try:
        request = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    if not isinstance(request, dict):
        return None
    rows = request.get("instances")
    if isinstance(rows, list) and rows:
        return len(rows)
    columns = request.get("inputs")
    if isinstance(columns, list) and columns:
        return len(columns)
    if isinstance(columns, dict) and columns:
        first = next(iter(columns.values()))
        return len(first) if isinstance(first, list) else 1
    return None


def pod_metrics_url(namespace: str, pod: str, metrics_path: str) -> str:
    """The path on the fleet's port where the pod's replica serves its metrics."""
    return f"{PODS_PREFIX}/{namespace}/{pod}{metrics_path}"


def application(fleet: Fleet) -> web.Application:
    async def status(request: web.Request) -> web.Response:
        if request.match_info["model"] != MODEL_NAME:
            return error(
                404, f"Servable not found for request: Latest({request.match_info['model']})"
            )
        state = "AVAILABLE" if fleet.ready else "UNAVAILABLE"
        version = {
            "version": "1",
            "state": state,
            "status": {"error_code": "OK", "error_message": ""},
        }
        return web.json_response({"model_version_status": [version]})

    async def predict(request: web.Request) -> web.StreamResponse:
        model, _, verb = request.match_info["tail"].partition(":")
        if model.split("/")[0] != MODEL_NAME or verb != "predict":
            return error(404, f"Servable not found for request: {request.match_info['tail']}")
        count = instances_in(await request.read())
        if count is None:
            return error(400, "JSON Parse error: the body needs a non-empty 'instances' list")
        replica = fleet.pick()
        if replica is None:
            return error(503, "no ready endpoint for the model Service")
        try:
            await replica.predict(count)
        except ReplicaKilled:
            request.transport.abort()  # the process died: the client sees a reset connection
            raise web.HTTPServiceUnavailable() from None  # never sent: the connection is gone
        return web.json_response(
            {"predictions": [SIMULATED] * count}, headers={"X-Simulated-Replica": replica.pod}
        )

    async def pod_metrics(request: web.Request) -> web.Response:
        namespace, pod = request.match_info["namespace"], request.match_info["pod"]
        with fleet.lock:
            replica = fleet.replicas.get(pod) if namespace == fleet.namespace else None
        path = "/" + request.match_info["path"]
        if replica is None or replica.metrics_path != path:
            return web.Response(status=404, text=f"no metrics at {request.path}\n")
        return web.Response(
            text=replica.metrics.prometheus_text(),
            headers={"Content-Type": "text/plain; version=0.0.4"},  # as serve-local's
        )

    app = web.Application(client_max_size=64 * 2**20)
    app.router.add_get("/v1/models/{model}", status)
    app.router.add_post("/v1/models/{tail:.+}", predict)
    app.router.add_get(PODS_PREFIX + "/{namespace}/{pod}/{path:.+}", pod_metrics)
    return app


@contextmanager
def fleet_server(fleet: Fleet, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serves the fleet in a thread of its own, on `port` (0: a free one); yields its URL."""
    loop = asyncio.new_event_loop()
    started = threading.Event()
    address: list[str] = []

    async def serve() -> web.AppRunner:
        runner = web.AppRunner(application(fleet), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = site._server.sockets[0].getsockname()[1]
        address.append(f"http://{host}:{bound}")
        return runner

    failed: list[OSError] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            runner = loop.run_until_complete(serve())
        except OSError as error:  # the port is taken
            failed.append(error)
            started.set()
            loop.close()
            return
        fleet.loop = loop
        started.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    if not started.wait(30):
        raise RuntimeError("the replica fleet's server did not start")
    if failed:
        raise RuntimeError(f"the replica fleet cannot listen on {host}:{port}: {failed[0]}")
    try:
        yield address[0]
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)
