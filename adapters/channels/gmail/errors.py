"""Gmail API and push failures in the FteError tree.

`retryable` tells a caller whether trying again later can help: a rate limit (429), a
server error (5xx) or the network failing can pass; a rejected request (400), missing
permission (401/403) or an unknown message (404) will not change by waiting.
"""

from __future__ import annotations

from fte_core.errors import DeliveryError, DeliveryRejected, FteError

RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


class GmailError(FteError):
    """A Gmail API call failed (vendor error chained)."""

    def __init__(self, operation: str, message: str, *, status: int | None, retryable: bool):
        self.operation = operation
        self.status = status
        self.retryable = retryable
        self.detail = message
        kind = "retryable" if retryable else "permanent"
        code = f"HTTP {status}" if status is not None else "network"
        super().__init__(f"Gmail {operation} failed ({code}, {kind}): {message}")


class GmailSendError(GmailError, DeliveryError):
    """A reply could not be sent now (rate limit, outage, network): a DeliveryError, so
    the outbound worker records it failed and retries it with backoff."""


class GmailSendRejected(GmailSendError, DeliveryRejected):
    """Gmail refused the reply for good (bad request, no permission, a reply that cannot
    be built): recorded as undelivered, never retried; a person takes the ticket."""

    def __init__(self, operation: str, message: str, *, status: int | None) -> None:
        super().__init__(operation, message, status=status, retryable=False)
        self.code = f"gmail-{status}" if status is not None else f"gmail-{operation}"


def send_error(
    operation: str, message: str, *, status: int | None, retryable: bool
) -> GmailSendError:
    """The delivery error for a failed send: retried, or rejected for good."""
    if retryable:
        return GmailSendError(operation, message, status=status, retryable=True)
    return GmailSendRejected(operation, message, status=status)


class PushAuthError(FteError):
    """A Pub/Sub push whose bearer token does not verify (the webhook answers 401)."""


class GmailNotConfigured(FteError):
    """The Gmail channel lacks a setting it needs (the webhook answers 503, naming it)."""


class PushCertsUnavailable(FteError):
    """Google's token-signing certificates could not be fetched (the webhook answers 503,
    and Pub/Sub delivers the push again later)."""
