"""The rehearsal's load model: closed-loop users, per-pod CPU, saturation and latency."""

from __future__ import annotations

import math

import pytest

from tooling.analytic_load import THINK_SECONDS, load_point

C = 0.2  # CPU-seconds per request
K = 3.0  # cores per pod


def test_light_load_is_users_over_think_plus_service_time():
    point = load_point(2, 1, C, K)
    service = C / K
    assert point.offered_rps == pytest.approx(2 / (THINK_SECONDS + point.response_seconds))
    assert point.response_seconds == pytest.approx(service / (1 - point.offered_rps / (K / C)))
    assert not point.saturated


def test_cpu_per_pod_is_its_share_of_the_work_and_never_above_its_cores():
    for users in (1, 5, 10, 40, 200):
        for pods in (1, 2, 4):
            point = load_point(users, pods, C, K)
            assert point.cpu_cores_per_pod == pytest.approx(min(K, point.served_rps / pods * C))
            assert point.served_rps <= pods * K / C + 1e-9


def test_more_replicas_lower_per_pod_cpu_and_latency():
    one, two = load_point(16, 1, C, K), load_point(16, 2, C, K)
    assert two.cpu_cores_per_pod < one.cpu_cores_per_pod
    assert two.response_seconds < one.response_seconds
    assert two.offered_rps >= one.offered_rps


def test_saturated_replicas_queue_the_excess():
    point = load_point(200, 1, C, K)
    assert point.saturated
    assert point.served_rps == pytest.approx(K / C, rel=0.01)
    assert point.cpu_cores_per_pod == pytest.approx(K, rel=0.01)
    assert point.response_seconds == pytest.approx(200 / point.served_rps - THINK_SECONDS)
    assert point.response_seconds > 10 * (C / K)


def test_no_ready_replica_serves_nothing():
    point = load_point(4, 0, C, K)
    assert point.served_rps == 0 and math.isinf(point.response_seconds)
    assert load_point(0, 3, C, K).offered_rps == 0


def test_bad_calibration_is_refused():
    with pytest.raises(ValueError, match="positive"):
        load_point(1, 1, 0, K)


def test_quantities_parse_like_kubernetes():
    from tooling.quantities import cpu_cores, memory_bytes, millicores

    assert cpu_cores("1500m") == 1.5 and cpu_cores("3") == 3 and cpu_cores(2) == 2
    assert memory_bytes("4Gi") == 4 * 2**30 and memory_bytes("13862036Ki") == 13862036 * 1024
    assert millicores(0.0424) == "42m"
    with pytest.raises(ValueError, match="quantity"):
        cpu_cores("three")


def test_a_simulated_pods_cpu_is_never_written_as_zero():
    """kwok's counter grows only at scrapes, from the annotation then: a pod at 0m at every
    scrape keeps a counter of 0, which metrics-server drops, and the HPA counts a pod without
    metrics at 100 % on a scale-down (tests/test_faults.py's flake)."""
    from tooling.pod_usage import usage_cpu

    assert usage_cpu(0.0) == "1m" and usage_cpu(0.0004) == "1m"
    assert usage_cpu(0.25) == "250m" and usage_cpu(2.0) == "2000m"
