"""The Cluster Autoscaler's scaling rules (its FAQ), as pure decisions over a cluster snapshot.

The real cluster-autoscaler could not be built here (its module is not served by the Go
module proxy; see the rehearsal's README section), so the rehearsal runs
`RehearsalNodeGroupController`, which applies these rules:

- **Scale up** when pods are Unschedulable: pack them (first fit, by CPU and memory requests)
  onto new nodes shaped like the group's template; add as many nodes as that takes beyond
  those already being provisioned, up to the group's max. A pod that would not fit even on an
  empty template node triggers nothing.
- **Scale down** a node whose pods' requests are under `utilization_threshold` (50 %) of its
  allocatable CPU *and* memory for `unneeded_seconds` (10 min), when no scale-up happened in
  the last `delay_after_add_seconds` (10 min), the group stays at or above its min, and every
  pod on it fits on the other nodes. One node at a time, the emptiest first.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Resources:
    cpu: float  # cores
    memory: float  # bytes

    def __add__(self, other: Resources) -> Resources:
        return Resources(self.cpu + other.cpu, self.memory + other.memory)

    def __sub__(self, other: Resources) -> Resources:
        return Resources(self.cpu - other.cpu, self.memory - other.memory)

    def fits_in(self, free: Resources) -> bool:
        return self.cpu <= free.cpu + 1e-9 and self.memory <= free.memory + 1e-9


ZERO = Resources(0.0, 0.0)


@dataclass(frozen=True)
class PodView:
    name: str
    requests: Resources
    movable: bool = True  # False for DaemonSet pods and pods without a controller


@dataclass(frozen=True)
class NodeView:
    name: str
    allocatable: Resources
    ready: bool
    pods: tuple[PodView, ...] = ()

    @property
    def requested(self) -> Resources:
        total = ZERO
        for pod in self.pods:
            total = total + pod.requests
        return total

    @property
    def free(self) -> Resources:
        return self.allocatable - self.requested

    @property
    def utilization(self) -> float:
        """The larger of CPU and memory requests over allocatable, as the FAQ measures it."""
        used = self.requested
        return max(used.cpu / self.allocatable.cpu, used.memory / self.allocatable.memory)


@dataclass(frozen=True)
class GroupRules:
    min_size: int = 1
    max_size: int = 3
    template: Resources = Resources(3.92, 13.5e9)
    utilization_threshold: float = 0.5
    unneeded_seconds: float = 600.0
    delay_after_add_seconds: float = 600.0


def nodes_to_add(
    pending: list[PodView], group_size: int, rules: GroupRules, upcoming: int = 0
) -> int:
    """How many more template nodes the pending pods need (first fit), beyond the `upcoming`
    ones already being provisioned, capped at the group's max (`group_size` counts them)."""
    bins: list[Resources] = []
    for pod in sorted(pending, key=lambda p: (p.requests.cpu, p.requests.memory), reverse=True):
        if not pod.requests.fits_in(rules.template):
            continue  # no node of this group could ever run it
        for i, free in enumerate(bins):
            if pod.requests.fits_in(free):
                bins[i] = free - pod.requests
                break
        else:
            bins.append(rules.template - pod.requests)
    return max(0, min(len(bins) - upcoming, rules.max_size - group_size))


def _fits_elsewhere(node: NodeView, others: list[NodeView]) -> bool:
    free = {other.name: other.free for other in others if other.ready}
    for pod in sorted(node.pods, key=lambda p: p.requests.cpu, reverse=True):
        if not pod.movable:
            return False
        target = next((name for name, room in free.items() if pod.requests.fits_in(room)), None)
        if target is None:
            return False
        free[target] = free[target] - pod.requests
    return True


@dataclass
class ScaleDownTracker:
    """Remembers since when each node has been unneeded (the FAQ's unneeded time)."""

    unneeded_since: dict[str, float] = field(default_factory=dict)

    def node_to_remove(
        self, nodes: list[NodeView], now: float, last_scale_up: float | None, rules: GroupRules
    ) -> str | None:
        """The node to remove now, or None."""
        candidates = {
            node.name
            for node in nodes
            if node.ready and node.utilization < rules.utilization_threshold
        }
        self.unneeded_since = {name: self.unneeded_since.get(name, now) for name in candidates}
        if len(nodes) <= rules.min_size:
            return None
        if last_scale_up is not None and now - last_scale_up < rules.delay_after_add_seconds:
            return None
        ripe = [
            node
            for node in nodes
            if node.name in self.unneeded_since
            and now - self.unneeded_since[node.name] >= rules.unneeded_seconds
            and _fits_elsewhere(node, [other for other in nodes if other.name != node.name])
        ]
        if not ripe:
            return None
        chosen = min(ripe, key=lambda node: (node.utilization, node.name))
        del self.unneeded_since[chosen.name]
        return chosen.name
