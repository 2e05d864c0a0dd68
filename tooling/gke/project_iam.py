"""A role on the project for a Kubernetes ServiceAccount's principal, through the Cloud Resource
Manager v1 REST API (projects.get for the project's number, projects.getIamPolicy and
setIamPolicy), with google-auth's authorized session: the project has no Resource Manager client
library, and this is the only call it needs. GMP's frontend reads Cloud Monitoring with it
(roles/monitoring.viewer, tooling.gke.managed_prometheus)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import requests

from tooling.errors import UserError, one_line

API = "https://cloudresourcemanager.googleapis.com/v1"
# http://HOST:PORT of a local Resource Manager (the tests' double) to use instead, unauthenticated.
LOCAL_ENDPOINT_VARIABLE = "RESNET_SERVING_RESOURCE_MANAGER_ENDPOINT"
SCOPE = "https://www.googleapis.com/auth/cloud-platform"
POLICY_VERSION = 3  # asked for, so that conditional bindings are read and kept as they are
ETAG_RETRIES = 3  # setIamPolicy answers 409 ABORTED when the policy changed since it was read


@dataclass
class ProjectIam:
    session: requests.Session
    project: str
    api: str = API

    def call(self, method: str, suffix: str, body: dict | None = None) -> dict:
        response = self.session.request(
            method, f"{self.api}/projects/{self.project}{suffix}", json=body, timeout=30
        )
        if response.status_code >= 400:
            raise ApiError(response.status_code, response.text)
        return response.json()

    def number(self) -> str:
        """The project's number (IAM principals of Workload Identity name it)."""
        return str(self.call("GET", "")["projectNumber"])

    def grant(self, role: str, member: str, say: Callable[[str], None]) -> bool:
        """Adds `member` to the project's unconditional binding of `role`; False if it was
        there. Read-modify-write with the policy's etag, again on a concurrent change."""
        for attempt in range(ETAG_RETRIES):
            policy = self.call(
                "POST", ":getIamPolicy", {"options": {"requestedPolicyVersion": POLICY_VERSION}}
            )
            bindings = policy.setdefault("bindings", [])
            binding = next(
                (b for b in bindings if b.get("role") == role and "condition" not in b), None
            )
            if binding is not None and member in binding.get("members", []):
                say(f"gke: {role} on project {self.project} → {member} (already)")
                return False
            if binding is None:
                bindings.append({"role": role, "members": [member]})
            else:
                binding["members"].append(member)
            policy["version"] = max(int(policy.get("version", 1)), POLICY_VERSION)
            try:
                self.call("POST", ":setIamPolicy", {"policy": policy})
            except ApiError as error:
                if error.status == 409 and attempt + 1 < ETAG_RETRIES:
                    continue
                raise
            say(f"gke: ✓ {role} on project {self.project} → {member}")
            return True
        return False  # not reached: the last attempt returns or raises


class ApiError(Exception):
    def __init__(self, status: int, text: str) -> None:
        super().__init__(f"HTTP {status}: {one_line(text, 300)}")
        self.status = status
        self.text = text


def project_iam(project: str) -> ProjectIam:
    """Application Default Credentials (`gcloud auth application-default login`), or the local
    endpoint in $RESNET_SERVING_RESOURCE_MANAGER_ENDPOINT."""
    endpoint = os.environ.get(LOCAL_ENDPOINT_VARIABLE)
    if endpoint:
        return ProjectIam(requests.Session(), project, f"{endpoint.rstrip('/')}/v1")
    import google.auth
    import google.auth.exceptions
    from google.auth.transport.requests import AuthorizedSession

    try:
        credentials, _ = google.auth.default(scopes=[SCOPE])
    except google.auth.exceptions.DefaultCredentialsError as error:
        raise UserError(
            "no Google credentials found: run `gcloud auth application-default login` and try again"
        ) from error
    return ProjectIam(AuthorizedSession(credentials), project)


def readable(error: ApiError, action: str, project: str, instead: str) -> UserError:
    """`instead`: the command that does the same by hand."""
    if "SERVICE_DISABLED" in error.text or "has not been used" in error.text:
        return UserError(
            f"could not {action}: the Cloud Resource Manager API is not enabled in project "
            f"{project}; enable it with `gcloud services enable cloudresourcemanager.googleapis."
            f"com --project {project}`, or run `{instead}`"
        )
    if error.status == 403:
        return UserError(
            f"could not {action}: permission denied (the account needs "
            f"resourcemanager.projects.setIamPolicy, e.g. roles/resourcemanager.projectIamAdmin); "
            f"ask an owner to run `{instead}`"
        )
    if error.status == 401:
        return UserError(
            f"could not {action}: Google rejected the credentials; run "
            "`gcloud auth application-default login` and try again"
        )
    return UserError(f"could not {action}: {error}; or run `{instead}`")
