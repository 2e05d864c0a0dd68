"""The replica fleet short of a cluster: processor sharing worked out by hand on a clock the
test moves, and the HTTP front's answers (served, 400, 404, 503, a reset when killed)."""

from __future__ import annotations

import asyncio
import http.client
import json
import threading
import urllib.error
import urllib.request

import pytest

from tooling.fleet.endpoints import Fleet
from tooling.fleet.replicas import ModelCost, SimulatedReplica
from tooling.fleet.server import SIMULATED, fleet_server
from tooling.fleet.sharing import ProcessorSharing, ReplicaKilled


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def run_on_a_clock(scenario) -> None:
    asyncio.run(scenario(Clock()))


async def at(clock: Clock, cpu: ProcessorSharing, now: float) -> None:
    """Moves the clock to `now` and lets the replica act on it."""
    clock.now = now
    cpu.tick()
    await settle()


def test_one_request_alone_is_capped_and_the_rest_wait_their_turn():
    async def scenario(clock: Clock) -> None:
        cpu = ProcessorSharing(cores=2.0, per_request_cores=1.0, clock=clock)
        assert cpu.side_by_side == 2
        # one request of 0.4 core-s alone: capped at 1 core, done after 0.4 s
        alone = asyncio.ensure_future(cpu.serve(0.4))
        await settle()
        await at(clock, cpu, 0.39)
        assert not alone.done()
        await at(clock, cpu, 0.4)
        assert alone.done()
        # four at once: two run side by side (1 core each), two wait, first come first served
        four = [asyncio.ensure_future(cpu.serve(0.4)) for _ in range(4)]
        await settle()
        await at(clock, cpu, 0.79)
        assert [job.done() for job in four] == [False] * 4
        await at(clock, cpu, 0.8)
        assert [job.done() for job in four] == [True, True, False, False]
        await at(clock, cpu, 1.2)
        assert all(job.done() for job in four)
        assert cpu.busy_core_seconds() == pytest.approx(0.4 + 4 * 0.4)

    run_on_a_clock(scenario)


def test_requests_running_side_by_side_share_the_cores():
    async def scenario(clock: Clock) -> None:
        # one request may use 0.8 core: three run side by side on 2 cores, 2/3 core each
        cpu = ProcessorSharing(cores=2.0, per_request_cores=0.8, clock=clock)
        assert cpu.side_by_side == 3
        three = [asyncio.ensure_future(cpu.serve(1.0)) for _ in range(3)]
        await settle()
        await at(clock, cpu, 1.49)
        assert not any(job.done() for job in three)
        await at(clock, cpu, 1.5)
        assert all(job.done() for job in three)
        assert cpu.busy_core_seconds() == pytest.approx(3.0)

    run_on_a_clock(scenario)


def test_a_late_arrival_waits_for_the_one_running():
    async def scenario(clock: Clock) -> None:
        cpu = ProcessorSharing(cores=1.0, per_request_cores=1.0, clock=clock)
        first = asyncio.ensure_future(cpu.serve(1.0))
        await settle()
        await at(clock, cpu, 0.5)
        second = asyncio.ensure_future(cpu.serve(1.0))  # one at a time: it waits
        await settle()
        await at(clock, cpu, 1.0)
        assert first.done() and not second.done()
        await at(clock, cpu, 1.99)
        assert not second.done()
        await at(clock, cpu, 2.0)
        assert second.done()

    run_on_a_clock(scenario)


def test_a_killed_replica_fails_what_is_in_flight():
    async def scenario(clock: Clock) -> None:
        cpu = ProcessorSharing(cores=1.0, per_request_cores=1.0, clock=clock)
        jobs = [asyncio.ensure_future(cpu.serve(1.0)) for _ in range(3)]
        await settle()
        assert cpu.kill() == 3
        await settle()
        for job in jobs:
            with pytest.raises(ReplicaKilled):
                job.result()
        assert cpu.in_flight == 0

    run_on_a_clock(scenario)


def cost() -> ModelCost:
    return ModelCost(cpu_seconds=0.01, per_request_cores=1.0)


def fleet_with(*pods: str) -> Fleet:
    fleet = Fleet(None, None, "ns", "svc", cost(), node_cpu=2.0)
    for pod in pods:
        fleet.replicas[pod] = SimulatedReplica(pod, 1.0, cost())
    fleet.ready = tuple(pods)
    return fleet


def post(url: str, body: bytes) -> tuple[int, dict, dict]:
    request = urllib.request.Request(
        f"{url}/v1/models/image_classifier:predict", data=body, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


def test_the_front_answers_like_tf_serving_and_says_it_is_simulated():
    fleet = fleet_with("pod-a", "pod-b")
    with fleet_server(fleet) as url:
        body = json.dumps({"instances": [{"b64": "AA=="}, {"b64": "AA=="}]}).encode()
        status, headers, answer = post(url, body)
        assert status == 200 and answer["predictions"] == [SIMULATED, SIMULATED]
        assert headers["X-Simulated-Replica"] in ("pod-a", "pod-b")
        assert all("simulated" in label for label in SIMULATED["labels"])
        status, _, answer = post(url, b'{"instances": [')
        assert status == 400 and "JSON" in answer["error"]
        with urllib.request.urlopen(f"{url}/v1/models/image_classifier", timeout=5) as response:
            assert json.loads(response.read())["model_version_status"][0]["state"] == "AVAILABLE"
        fleet.ready = ()
        status, _, answer = post(url, json.dumps({"instances": [1]}).encode())
        assert status == 503 and "no ready endpoint" in answer["error"]


def test_a_request_in_flight_when_its_replica_is_killed_sees_a_reset():
    fleet = fleet_with("pod-a")
    fleet.replicas["pod-a"] = SimulatedReplica("pod-a", 1.0, ModelCost(60.0, 1.0))  # a minute
    outcome: list[BaseException | int] = []
    with fleet_server(fleet) as url:
        host, port = url.removeprefix("http://").split(":")

        def client() -> None:
            connection = http.client.HTTPConnection(host, int(port), timeout=20)
            try:
                connection.request(
                    "POST", "/v1/models/image_classifier:predict", b'{"instances": [1]}'
                )
                outcome.append(connection.getresponse().status)
            except (ConnectionError, http.client.HTTPException) as error:
                outcome.append(error)

        thread = threading.Thread(target=client)
        thread.start()
        while not fleet.replicas["pod-a"].cpu.in_flight:
            threading.Event().wait(0.05)
        fleet.loop.call_soon_threadsafe(fleet.kill, "pod-a")
        thread.join(timeout=20)
    assert outcome and isinstance(outcome[0], ConnectionError | http.client.HTTPException)
    assert fleet.killed_requests == 1 and "pod-a" not in fleet.replicas


@pytest.mark.slow  # real Locust
def test_locust_counts_a_reset_connection_as_a_failure(tmp_path):
    """The locustfile's REST user, under real Locust: requests whose replica is killed fail
    (they used to crash the task and vanish from the stats)."""
    from tooling.loadgen.run import LoadRunSpec, run_load

    slow = ModelCost(cpu_seconds=5.0, per_request_cores=1.0)
    fleet = fleet_with("pod-a", "pod-b")
    for pod in ("pod-a", "pod-b"):
        fleet.replicas[pod] = SimulatedReplica(pod, 1.0, slow)
    # every request goes to pod-a until it is killed (at random, all four users' first
    # requests went to pod-b once in a while, and pod-a then saw none within the 8 s)
    fleet.ready = ("pod-a",)

    def kill_pod_a() -> None:
        while fleet.replicas["pod-a"].cpu.in_flight == 0:
            threading.Event().wait(0.1)
        fleet.ready = ("pod-b",)  # its endpoint goes away, then the process
        fleet.loop.call_soon_threadsafe(fleet.kill, "pod-a")

    with fleet_server(fleet) as url:
        threading.Thread(target=kill_pod_a, daemon=True).start()
        spec = LoadRunSpec(
            host=url, report_dir=tmp_path, shape=None, users=4, spawn_rate=4, run_time="8s"
        )
        result = run_load(spec, say=lambda line: None)
    assert fleet.killed_requests > 0
    assert result.failures == fleet.killed_requests
    failures = (tmp_path / "locust_failures.csv").read_text()
    assert "HTTP 0" in failures and "connection closed" in failures
