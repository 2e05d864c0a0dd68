"""The Cluster Autoscaler FAQ's rules the rehearsal's node-group controller follows."""

from __future__ import annotations

from tooling.rehearsal.node_group_rules import (
    GroupRules,
    NodeView,
    PodView,
    Resources,
    ScaleDownTracker,
    nodes_to_add,
)

GI = 2**30
RULES = GroupRules(min_size=1, max_size=3, template=Resources(3.92, 13 * GI))
LAB_POD = Resources(3.0, 4 * GI)  # the lab's requests: one per e2-standard-4 node


def pod(name: str, requests: Resources = LAB_POD, movable: bool = True) -> PodView:
    return PodView(name, requests, movable)


def node(name: str, *pods: PodView, ready: bool = True) -> NodeView:
    return NodeView(name, RULES.template, ready, pods)


def test_each_lab_sized_pending_pod_needs_its_own_node():
    assert nodes_to_add([pod("a"), pod("b")], group_size=1, rules=RULES) == 2


def test_small_pods_share_new_nodes():
    small = Resources(1.0, 1 * GI)
    assert nodes_to_add([pod(str(i), small) for i in range(6)], group_size=1, rules=RULES) == 2


def test_scale_up_stops_at_the_group_max():
    assert nodes_to_add([pod("a"), pod("b"), pod("c")], group_size=2, rules=RULES) == 1
    assert nodes_to_add([pod("a")], group_size=3, rules=RULES) == 0


def test_nodes_already_provisioning_count_against_the_need():
    pending = [pod("a"), pod("b")]
    assert nodes_to_add(pending, group_size=2, rules=RULES, upcoming=1) == 1
    assert nodes_to_add(pending, group_size=3, rules=RULES, upcoming=2) == 0


def test_a_pod_no_node_could_run_triggers_nothing():
    assert nodes_to_add([pod("huge", Resources(8.0, GI))], group_size=1, rules=RULES) == 0


def test_underused_node_goes_only_after_the_unneeded_time():
    tracker = ScaleDownTracker()
    nodes = [node("n1", pod("a")), node("n2")]
    assert tracker.node_to_remove(nodes, now=0, last_scale_up=None, rules=RULES) is None
    assert tracker.node_to_remove(nodes, now=599, last_scale_up=None, rules=RULES) is None
    assert tracker.node_to_remove(nodes, now=600, last_scale_up=None, rules=RULES) == "n2"


def test_busy_nodes_stay():
    tracker = ScaleDownTracker()
    nodes = [node("n1", pod("a")), node("n2", pod("b"))]  # 3 of 3.92 cores each: 77 %
    for now in (0, 700, 1400):
        assert tracker.node_to_remove(nodes, now=now, last_scale_up=None, rules=RULES) is None


def test_no_scale_down_soon_after_a_scale_up_or_below_min():
    tracker = ScaleDownTracker()
    nodes = [node("n1", pod("a")), node("n2")]
    tracker.node_to_remove(nodes, now=0, last_scale_up=None, rules=RULES)
    assert tracker.node_to_remove(nodes, now=700, last_scale_up=300, rules=RULES) is None
    assert tracker.node_to_remove(nodes, now=1000, last_scale_up=300, rules=RULES) == "n2"
    alone = ScaleDownTracker()
    alone.node_to_remove([node("n1")], now=0, last_scale_up=None, rules=RULES)
    assert alone.node_to_remove([node("n1")], now=900, last_scale_up=None, rules=RULES) is None


def test_a_node_whose_pods_cannot_move_stays():
    small = Resources(0.5, GI)
    tracker = ScaleDownTracker()
    pinned = [node("n1", pod("a")), node("n2", pod("s", small, movable=False))]
    tracker.node_to_remove(pinned, now=0, last_scale_up=None, rules=RULES)
    assert tracker.node_to_remove(pinned, now=700, last_scale_up=None, rules=RULES) is None
    full = [node("n1", pod("a")), node("n2", pod("b", Resources(1.5, GI)))]
    tracker = ScaleDownTracker()
    tracker.node_to_remove(full, now=0, last_scale_up=None, rules=RULES)
    assert tracker.node_to_remove(full, now=700, last_scale_up=None, rules=RULES) is None


def test_a_node_that_becomes_busy_again_restarts_its_clock():
    tracker = ScaleDownTracker()
    idle = [node("n1", pod("a")), node("n2")]
    tracker.node_to_remove(idle, now=0, last_scale_up=None, rules=RULES)
    busy = [node("n1", pod("a")), node("n2", pod("b"))]
    tracker.node_to_remove(busy, now=300, last_scale_up=None, rules=RULES)
    tracker.node_to_remove(idle, now=400, last_scale_up=None, rules=RULES)
    assert tracker.node_to_remove(idle, now=900, last_scale_up=None, rules=RULES) is None
    assert tracker.node_to_remove(idle, now=1000, last_scale_up=None, rules=RULES) == "n2"
