"""How faithful the replica fleet is, measured in one run on this machine (used by
bench/fleet_fidelity.py, which prints the tables):

- against the real thing: one simulated replica with this machine's cores and the model's cost
  measured here (`calibration.measure`), and one real `serve-local` of the exported model, each
  loaded by the same Locust REST user at 1, 4 and 8 users: p50 and req/s side by side;
- against the analytical load model: a few simulated replicas under a fixed number of users in
  steady state, their offered req/s and CPU per pod next to the model's formula.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tooling import calibration
from tooling.analytic_load import load_point
from tooling.fleet.endpoints import Fleet
from tooling.fleet.replicas import ModelCost, SimulatedReplica
from tooling.fleet.server import fleet_server
from tooling.loadgen.run import LoadRunSpec, run_load

USERS = (1, 4, 8)
# Locust shares this machine with the server it measures: it yields the CPU (on a cluster it
# runs on other nodes), so the real server's numbers are its own, as the simulated one's are.
LOCUST_NICENESS = 10


@dataclass(frozen=True)
class Measured:
    users: int
    rps: float
    p50_ms: float


@dataclass(frozen=True)
class Side:
    """One row of the comparison with the real server."""

    users: int
    real: Measured
    simulated: Measured

    @property
    def rps_ratio(self) -> float:
        return self.simulated.rps / self.real.rps

    @property
    def p50_ratio(self) -> float:
        return self.simulated.p50_ms / self.real.p50_ms


def fixed_users_run(host: str, users: int, seconds: int, report: Path) -> LoadRunSpec:
    """A Locust run of the project's REST user, `users` of them (all started at once), for
    `seconds`, on one worker."""
    return LoadRunSpec(
        host=host,
        report_dir=report,
        shape=None,
        users=users,
        spawn_rate=users,
        workers=1,
        run_time=f"{seconds}s",
        niceness=LOCUST_NICENESS,
    )


def locust_at(host: str, users: int, seconds: int, report: Path) -> Measured:
    """The project's REST user, `users` of them (all started at once), for `seconds`."""
    result = run_load(fixed_users_run(host, users, seconds, report), say=lambda line: None)
    if result.failures:
        raise RuntimeError(f"{result.failures} failed requests at {users} users: see {report}")
    return Measured(users, result.requests_per_second, result.median_ms)


def model_cost_here(model_dir: Path) -> ModelCost:
    """The model's cost measured on this machine, now (CPU-seconds and latency at batch 1)."""
    return ModelCost.measured(calibration.measure(model_dir, requests=32))


@contextmanager
def simulated_fleet(cost: ModelCost, replicas: int, cores: float) -> Iterator[tuple[str, Fleet]]:
    """A fleet of `replicas` always-ready simulated replicas, served locally (no cluster)."""
    fleet = Fleet(None, None, "", "", cost, node_cpu=cores)
    names = tuple(f"replica-{index}" for index in range(replicas))
    for name in names:
        fleet.replicas[name] = SimulatedReplica(name, cores, cost)
    fleet.ready = names
    with fleet_server(fleet) as url:
        yield url, fleet


def compare_with_serve_local(
    model_dir: Path, seconds: int = 20, say: Callable[[str], None] = print
) -> list[Side]:
    """The same Locust user against the real server, then against one simulated replica. The
    model's cost is measured between the two, on a machine the real server's minute has let
    settle: measured first, just after the suite's previous test, its batch-1 latency once read
    168 ms against the real server's p50 of 130 ms (118 to 123 ms, and 130 to 150, alone)."""
    from tooling.serving import process

    cores = float(os.cpu_count() or 1)
    real, simulated = {}, {}
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        with process.local_server(model_dir, work / "server") as server:
            for users in USERS:
                say(f"fidelity: serve-local, {users} users …")
                real[users] = locust_at(server.rest, users, seconds, work / f"real-{users}")
        cost = model_cost_here(model_dir)
        say(
            f"fidelity: a prediction here costs {cost.cpu_seconds:.3f} CPU-s on up to "
            f"{cost.per_request_cores:.2f} cores"
        )
        with simulated_fleet(cost, 1, cores) as (url, _):
            for users in USERS:
                say(f"fidelity: simulated replica, {users} users …")
                simulated[users] = locust_at(url, users, seconds, work / f"sim-{users}")
    return [Side(users, real[users], simulated[users]) for users in USERS]


@dataclass(frozen=True)
class SteadyState:
    users: int
    replicas: int
    fleet_rps: float
    model_rps: float
    fleet_cpu_per_pod: float
    model_cpu_per_pod: float


def compare_with_load_model(
    users: int = 8,
    replicas: int = 2,
    cores: float = 2.0,
    cost: ModelCost | None = None,
    seconds: int = 40,
) -> SteadyState:
    """Simulated replicas under `users` for `seconds`, beside the load model's formula. Each
    request may use all of a replica's cores here, as the formula assumes (s = c / k)."""
    cpu_seconds = (cost or ModelCost.measured(calibration.load())).cpu_seconds
    cost = ModelCost(cpu_seconds, cores)
    samples: list[tuple[float, float]] = []  # (time, busy core-seconds of all replicas)
    stop = threading.Event()
    with simulated_fleet(cost, replicas, cores) as (url, fleet), tempfile.TemporaryDirectory() as d:

        def sample() -> None:
            while not stop.wait(0.5):
                busy = sum(r.cpu.busy_core_seconds() for r in fleet.replicas.values())
                samples.append((time.monotonic(), busy))

        threading.Thread(target=sample, daemon=True).start()
        started = time.monotonic()
        result = locust_at(url, users, seconds, Path(d))
        stop.set()
    # the steady part: from 10 s after the start (workers connected, users spawned) to 3 s
    # before the run's end
    steady = [(t, b) for t, b in samples if started + 10 <= t <= started + seconds - 3]
    (t0, b0), (t1, b1) = steady[0], steady[-1]
    busy_per_pod = (b1 - b0) / (t1 - t0) / replicas
    formula = load_point(users, replicas, cpu_seconds, cores)
    return SteadyState(
        users,
        replicas,
        result.rps,
        formula.offered_rps,
        busy_per_pod,
        formula.cpu_cores_per_pod,
    )
