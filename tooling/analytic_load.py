"""The load model: users over time → offered requests/s → CPU per ready pod, and latency.

Pods in the rehearsal run no containers, so their CPU use comes from this model, fed by the
same load shapes the locustfile runs and by `resnet-serving calibrate`'s measurement of the
real model. With

    U   users (from the load shape)             W  mean think time per user (0.85 s, the lab's;
                                                   WAIT_MIN and WAIT_MAX set it, as for Locust)
    n   ready replicas                           c  CPU-seconds per request (calibration)
    k   CPU cores one pod may use (its limit, else the node's allocatable share, else request)

each pod serves at most  mu = k / c  requests/s, and one request alone takes  s = c / k  seconds.
Locust users are a closed loop (a user sends its next request W seconds after the last
answer), so the offered rate solves

    lambda = U / (W + R(lambda)),   R(lambda) = s / (1 - rho),   rho = lambda / (n * mu)

(an M/M/1-like response time per pod with the load spread evenly): the smaller root of the
quadratic this gives. As users grow, lambda approaches n * mu and R = U / lambda - W grows
without bound (the queue absorbs the excess); rho ≥ 0.98 is reported as saturated.
Each ready pod then uses  cpu = lambda / n * c  cores (never more than k), which is what the
rehearsal writes into the pod's `kwok.x-k8s.io/usage-cpu` annotation; the HPA reads it back
through kwok's kubelet metrics and metrics-server, as it would read a real pod's. With no
ready replica nothing is served: R is infinite and every second counts against the SLO.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

THINK_SECONDS = 0.85  # the lab's between(0.8, 0.9)
SATURATED_UTILIZATION = 0.98


@dataclass(frozen=True)
class LoadPoint:
    """The model's answer for one moment."""

    offered_rps: float
    served_rps: float
    cpu_cores_per_pod: float
    response_seconds: float
    saturated: bool


def load_point(
    users: int,
    ready_pods: int,
    cpu_seconds_per_request: float,
    cores_per_pod: float,
    think_seconds: float = THINK_SECONDS,
) -> LoadPoint:
    """Solves the closed-loop model above for one moment."""
    if cpu_seconds_per_request <= 0 or cores_per_pod <= 0:
        raise ValueError("cpu_seconds_per_request and cores_per_pod must be positive")
    if users <= 0:
        return LoadPoint(0.0, 0.0, 0.0, 0.0, False)
    service = cpu_seconds_per_request / cores_per_pod
    if ready_pods <= 0:
        return LoadPoint(users / (think_seconds + service), 0.0, 0.0, math.inf, True)
    capacity = ready_pods * cores_per_pod / cpu_seconds_per_request

    # lambda = U / (W + s / (1 - lambda / C)) is a quadratic in lambda; take the root below C.
    # W*l^2 - (W*C + s*C + U)*l + U*C = 0  (multiply out, with C = capacity)
    a = think_seconds
    b = -(think_seconds * capacity + service * capacity + users)
    c = users * capacity
    if a == 0:
        rate = -c / b
    else:
        discriminant = b * b - 4 * a * c
        rate = (-b - math.sqrt(max(discriminant, 0.0))) / (2 * a)
    rate = min(rate, capacity * (1 - 1e-9))
    response = service / (1 - rate / capacity)
    cpu = min(cores_per_pod, rate / ready_pods * cpu_seconds_per_request)
    return LoadPoint(rate, rate, cpu, response, rate >= SATURATED_UTILIZATION * capacity)
