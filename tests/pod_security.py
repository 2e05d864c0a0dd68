"""Checks a pod spec against the Pod Security Standards *restricted* profile.

The same rules the PodSecurity admission controller enforces at `restricted` (which includes
`baseline`), applied offline to rendered manifests. On a real apiserver the namespace label
`pod-security.kubernetes.io/enforce: restricted` checks them again.
"""

from __future__ import annotations

from collections.abc import Iterator

RESTRICTED_VOLUME_TYPES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}
ALLOWED_SECCOMP = {"RuntimeDefault", "Localhost"}
POD_WORKLOAD_PATHS = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}


def pod_spec_of(manifest: dict) -> dict | None:
    """The pod spec inside a workload manifest, or None for objects without pods."""
    path = POD_WORKLOAD_PATHS.get(manifest.get("kind", ""))
    if path is None:
        return None
    node = manifest
    for key in path:
        node = node.get(key) or {}
    return node


def all_containers(pod_spec: dict) -> Iterator[dict]:
    for key in ("initContainers", "containers", "ephemeralContainers"):
        yield from pod_spec.get(key) or []


def restricted_violations(pod_spec: dict) -> list[str]:
    """Every way `pod_spec` breaks the restricted profile, as readable lines (empty = compliant)."""
    problems = []
    pod_context = pod_spec.get("securityContext") or {}
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if pod_spec.get(flag):
            problems.append(f"pod sets {flag}")
    for volume in pod_spec.get("volumes") or []:
        kinds = set(volume) - {"name"}
        if not kinds <= RESTRICTED_VOLUME_TYPES:
            problems.append(f"volume {volume.get('name')} uses {sorted(kinds)}")
    if (pod_context.get("seccompProfile") or {}).get("type") == "Unconfined":
        problems.append("pod seccompProfile is Unconfined")
    if pod_context.get("runAsUser") == 0:
        problems.append("pod runs as user 0")

    for container in all_containers(pod_spec):
        name = container.get("name")
        context = container.get("securityContext") or {}
        if context.get("privileged"):
            problems.append(f"container {name} is privileged")
        if context.get("allowPrivilegeEscalation") is not False:
            problems.append(f"container {name} must set allowPrivilegeEscalation: false")
        run_as_non_root = context.get("runAsNonRoot", pod_context.get("runAsNonRoot"))
        if run_as_non_root is not True:
            problems.append(f"container {name} must run with runAsNonRoot: true")
        if context.get("runAsUser", pod_context.get("runAsUser")) == 0:
            problems.append(f"container {name} runs as user 0")
        seccomp = (context.get("seccompProfile") or pod_context.get("seccompProfile") or {}).get(
            "type"
        )
        if seccomp not in ALLOWED_SECCOMP:
            problems.append(f"container {name} needs seccompProfile RuntimeDefault or Localhost")
        capabilities = context.get("capabilities") or {}
        if "ALL" not in (capabilities.get("drop") or []):
            problems.append(f"container {name} must drop ALL capabilities")
        added = set(capabilities.get("add") or []) - {"NET_BIND_SERVICE"}
        if added:
            problems.append(f"container {name} adds capabilities {sorted(added)}")
        for port in container.get("ports") or []:
            if port.get("hostPort"):
                problems.append(f"container {name} uses hostPort {port['hostPort']}")
    return problems
