"""The restricted-profile checker the chart tests rely on catches each kind of violation."""

from __future__ import annotations

import copy

import pytest
from pod_security import restricted_violations

COMPLIANT = {
    "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
    "volumes": [{"name": "tmp", "emptyDir": {}}],
    "containers": [
        {
            "name": "app",
            "securityContext": {
                "allowPrivilegeEscalation": False,
                "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]},
            },
        }
    ],
}


def with_change(path: list, value) -> dict:
    spec = copy.deepcopy(COMPLIANT)
    node = spec
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return spec


def test_compliant_spec_passes():
    assert restricted_violations(COMPLIANT) == []


@pytest.mark.parametrize(
    ("path", "value", "problem"),
    [
        (["securityContext", "runAsNonRoot"], False, "runAsNonRoot"),
        (["securityContext", "seccompProfile"], {"type": "Unconfined"}, "Unconfined"),
        (
            ["containers", 0, "securityContext", "allowPrivilegeEscalation"],
            True,
            "allowPrivilegeEscalation",
        ),
        (["containers", 0, "securityContext", "capabilities"], {"drop": []}, "drop ALL"),
        (
            ["containers", 0, "securityContext", "capabilities"],
            {"drop": ["ALL"], "add": ["SYS_ADMIN"]},
            "SYS_ADMIN",
        ),
        (["containers", 0, "securityContext", "privileged"], True, "privileged"),
        (["containers", 0, "securityContext", "runAsUser"], 0, "user 0"),
        (["volumes"], [{"name": "host", "hostPath": {"path": "/"}}], "hostPath"),
        (["hostNetwork"], True, "hostNetwork"),
        (["containers", 0, "ports"], [{"containerPort": 80, "hostPort": 80}], "hostPort"),
    ],
)
def test_each_violation_is_reported(path, value, problem):
    problems = restricted_violations(with_change(path, value))
    assert any(problem in line for line in problems), problems


def test_init_containers_are_checked_too():
    spec = copy.deepcopy(COMPLIANT)
    spec["initContainers"] = [{"name": "fetch", "securityContext": {}}]
    assert any("container fetch" in line for line in restricted_violations(spec))
