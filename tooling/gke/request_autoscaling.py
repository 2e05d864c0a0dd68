"""KEDA mode on GKE, from the values to the cluster: what `up --provider gke` installs before the
release when its values ask for KEDA mode, the same description for the dry run and the run, and
the values that point the chart's ScaledObject at the Prometheus chosen (`--prometheus gmp`, a
URL, or the values' own serverAddress)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from tooling import releases
from tooling.console import Say
from tooling.gke import keda_install, managed_prometheus
from tooling.gke.keda_install import GMP, KedaChart
from tooling.names import APP_NAMESPACE, SERVER_NAME
from tooling.runs import scaling_signal
from tooling.runs.run_spec import RunSpec


@dataclass(frozen=True)
class KedaSetup:
    """KEDA's chart, where its trigger reads, and what GMP mode adds to the cluster."""

    prometheus: str  # gmp, or Prometheus' URL
    server_address: str
    query: str  # the ScaledObject's query, as the chart renders it for these values
    threshold: str
    chart: KedaChart = field(default_factory=KedaChart)
    pod_monitoring: dict | None = None  # GMP only
    frontend: list[dict] = field(default_factory=list)  # GMP only

    @property
    def gmp(self) -> bool:
        return self.prometheus == GMP

    @property
    def values(self) -> dict:
        """Set after the user's values files: the ScaledObject reads this Prometheus."""
        return {"autoscaling": {"requests": {"keda": {"serverAddress": self.server_address}}}}

    def signal(self) -> str:
        where = "Managed Service for Prometheus" if self.gmp else "Prometheus"
        return (
            f"KEDA {self.chart.pinned} (Helm chart), {where} at {self.server_address}: "
            f"{self.query} ÷ replicas vs {self.threshold}"
        )


def keda_setup(run: RunSpec, prometheus: str, project: str, model_uri: str) -> KedaSetup | None:
    """What KEDA mode needs for these values, or None when they do not ask for it; refuses, in one
    line and before anything is made, what cannot work (tooling.gke.keda_install)."""
    values = [
        *releases.values_from_files(*run.values_files),
        {"model": {"source": {"uri": model_uri, "existingClaim": ""}}},
    ]
    choice = keda_install.prometheus_choice(values, prometheus)
    if not choice:
        return None
    gmp = choice == GMP
    address = managed_prometheus.server_address() if gmp else choice
    objects = scaling_signal.rendered_server_chart(
        [*values, scaling_signal.keda_server_address(address)], APP_NAMESPACE
    )
    trigger = scaling_signal.prometheus_trigger(objects)
    monitoring = None
    if gmp:
        selector, path = managed_prometheus.release_scrape(objects)
        monitoring = managed_prometheus.pod_monitoring(selector, path)
    return KedaSetup(
        prometheus=choice,
        server_address=address,
        query=str(trigger["query"]),
        threshold=str(trigger["threshold"]),
        pod_monitoring=monitoring,
        frontend=managed_prometheus.frontend_objects(project) if gmp else [],
    )


def plan_lines(setup: KedaSetup, project: str) -> list[list[str]]:
    """The dry run's steps for KEDA mode, each a title line and its details."""
    steps = [[f"KEDA: {setup.chart.describe()}"]]
    if setup.gmp:
        member = managed_prometheus.frontend_member("PROJECT_NUMBER", project)
        frontend = ", ".join(
            f"{o['kind']} {o['metadata']['namespace']}/{o['metadata']['name']}"
            for o in setup.frontend
        )
        steps.append(
            [
                "Managed Service for Prometheus: managed collection on "
                "(monitoringConfig.managedPrometheusConfig in the CreateCluster request; a reused "
                "cluster must have it)",
                f"   PodMonitoring {APP_NAMESPACE}/{SERVER_NAME} (scrapes the release's pods):",
                *("   " + line for line in json.dumps(setup.pod_monitoring, indent=2).splitlines()),
                f"   GMP's query frontend ({managed_prometheus.FRONTEND_IMAGE}, "
                f"--query.project-id={project}): {frontend}",
                f"   IAM binding {managed_prometheus.VIEWER_ROLE} on project {project} → {member} "
                "(Resource Manager setIamPolicy; kept if there; by hand: "
                f"{managed_prometheus.grant_command(project, member)})",
            ]
        )
    steps.append(
        [
            f"KEDA's trigger reads {setup.server_address} "
            f"(autoscaling.requests.keda.serverAddress): {setup.query} ÷ replicas, target "
            f"{setup.threshold} per replica"
        ]
    )
    return steps


def install(kubeconfig: Path, setup: KedaSetup, project: str, say: Say) -> dict:
    """KEDA's chart, and in GMP mode the frontend's IAM role, the PodMonitoring and the frontend;
    returns the values that point the release's ScaledObject at the Prometheus chosen."""
    from kubernetes import client

    from tooling.kube import api_client
    from tooling.runs.app_namespace import ensure_app_namespace

    keda_install.install(kubeconfig, setup.chart, say)
    if setup.gmp and setup.pod_monitoring is not None:
        grant_frontend(project, say)
        ensure_app_namespace(client.CoreV1Api(api_client(kubeconfig)))
        managed_prometheus.apply(kubeconfig, [setup.pod_monitoring, *setup.frontend])
        say(f"gke: ✓ PodMonitoring {SERVER_NAME}, GMP's frontend at {setup.server_address}")
    say(f"gke: the release scales on {setup.signal()}")
    return setup.values


def grant_frontend(project: str, say: Say) -> None:
    """roles/monitoring.viewer on the project for the frontend's KSA (Workload Identity
    Federation for GKE: its principal, no Google service account)."""
    from tooling.gke.project_iam import ApiError, project_iam, readable

    iam = project_iam(project)
    by_hand = managed_prometheus.grant_command(
        project, managed_prometheus.frontend_member("PROJECT_NUMBER", project)
    )
    action = f"give GMP's frontend {managed_prometheus.VIEWER_ROLE} on project {project}"
    try:
        member = managed_prometheus.frontend_member(iam.number(), project)
        iam.grant(managed_prometheus.VIEWER_ROLE, member, say)
    except ApiError as error:
        raise readable(error, action, project, by_hand) from error
