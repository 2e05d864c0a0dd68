"""Google API errors as one sentence that says what to do."""

from __future__ import annotations

from google.api_core import exceptions

from tooling.errors import UserError

SERVICE_DISABLED_HINTS = ("SERVICE_DISABLED", "has not been used", "it is disabled")


def readable(error: exceptions.GoogleAPICallError, action: str, project: str) -> UserError:
    """`action` says what was tried, e.g. "create cluster resnet-serving"."""
    message = error.message or str(error)
    if any(hint in message for hint in SERVICE_DISABLED_HINTS):
        return UserError(
            f"could not {action}: the Kubernetes Engine API is not enabled in project {project}; "
            f"enable it with `gcloud services enable container.googleapis.com --project "
            f"{project}`, wait a minute and run this again"
        )
    if isinstance(error, exceptions.ResourceExhausted) or "quota" in message.lower():
        return UserError(
            f"could not {action}: quota exceeded ({message}); ask for more quota (IAM & Admin → "
            "Quotas, e.g. CPUS in the region) or use a smaller --machine-type / --max-nodes"
        )
    if isinstance(error, exceptions.PermissionDenied):
        return UserError(
            f"could not {action}: permission denied in project {project}; the account needs "
            "roles/container.admin (and roles/iam.serviceAccountUser): sign in as one that has "
            "them with `gcloud auth application-default login`"
        )
    if isinstance(error, exceptions.Unauthenticated):
        return UserError(
            f"could not {action}: Google rejected the credentials; run "
            "`gcloud auth application-default login` and try again"
        )
    if isinstance(error, exceptions.NotFound):
        return UserError(f"could not {action}: not found ({message}); check --project/--location")
    return UserError(f"could not {action}: {message}")
