"""Errors a loop talking to a cluster outlives: the API server answering with an error, or not
answering at all (restarting, a dropped connection). The loop retries at its next period."""

from __future__ import annotations

import urllib3
from kubernetes.client.rest import ApiException

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    ApiException,
    urllib3.exceptions.HTTPError,  # connection refused or reset, timeouts (MaxRetryError …)
    ConnectionError,
    TimeoutError,
)
