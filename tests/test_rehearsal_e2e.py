"""End to end on the rehearsal cluster: real kube-apiserver, controller-manager (the real HPA
controller), scheduler and metrics-server; kwok nodes and pods; the load model for CPU.

One rehearsal with the fast profile and a step shape heavy enough to need more replicas than
the node pool can hold, then assertions on its timeline and events:
(a) the HPA raises replicas after load rises; (b) a replica goes Pending when the nodes are
full and a node is added for it; (c) at the node cap a replica stays Pending; (d) replicas
return to minReplicas after load stops; (e) nodes scale back down.
"""

from __future__ import annotations

import csv
import os

import pytest

from tooling.loadgen.load_shapes import StepShape
from tooling.rehearsal.cluster import missing_binaries
from tooling.rehearsal.profiles import profile
from tooling.rehearsal.rehearse import RehearsalSpec, rehearse

MISSING = missing_binaries()
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        bool(MISSING),
        reason=f"rehearsal binaries missing ({', '.join(MISSING)}): run `make setup-rehearsal` "
        "(make test does), or point RESNET_SERVING_TOOLS at a folder that has them",
    ),
]


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("rehearsal")
    spec = RehearsalSpec(
        run_dir=run_dir,
        profile=profile("fast"),
        shape=StepShape(step_users=4, step_seconds=10, steps=11),  # 4 → 44 users, 110 s
        min_nodes=1,
        max_nodes=3,
        cluster_name=f"resnet-e2e-{os.getpid()}",
    )
    result = rehearse(spec, say=print)
    with open(result.timeline, newline="") as handle:
        rows = [
            {k: (float(v) if v not in ("", None) else None) for k, v in row.items()}
            for row in csv.DictReader(handle)
        ]
    with open(result.events, newline="") as handle:
        events = list(csv.DictReader(handle))
    return result, rows, events


def first_time(rows, predicate):
    return next((row["t_seconds"] for row in rows if predicate(row)), None)


def test_a_hpa_raises_replicas_after_load_rises(rehearsal):
    _, rows, events = rehearsal
    load_start = first_time(rows, lambda r: r["users"] > 0)
    scaled = first_time(rows, lambda r: r["replicas_desired"] > 1)
    assert load_start is not None and scaled is not None and scaled > load_start
    assert any(e["reason"] == "SuccessfulRescale" for e in events)


def test_b_pending_replica_gets_a_new_node(rehearsal):
    _, rows, events = rehearsal
    pending = first_time(rows, lambda r: r["pods_pending"] > 0)
    more_nodes = first_time(rows, lambda r: r["nodes_ready"] > 1)
    assert pending is not None and more_nodes is not None and more_nodes > pending
    assert any(e["reason"] == "TriggeredScaleUp" for e in events)


def test_c_at_the_node_cap_a_replica_stays_pending(rehearsal):
    _, rows, _ = rehearsal
    assert any(
        r["nodes_ready"] == 3 and r["replicas_desired"] == 4 and r["pods_pending"] >= 1
        for r in rows
    )
    assert max(r["nodes_ready"] for r in rows) == 3


def test_d_replicas_return_to_min_after_load_stops(rehearsal):
    result, rows, _ = rehearsal
    load_end = max(r["t_seconds"] for r in rows if r["users"] > 0)
    assert result.scaled_in
    assert rows[-1]["replicas_ready"] == 1 and rows[-1]["t_seconds"] > load_end


def test_e_nodes_scale_back_down(rehearsal):
    _, rows, events = rehearsal
    assert rows[-1]["nodes_ready"] == 1
    assert any(e["reason"] == "ScaleDown" for e in events)
