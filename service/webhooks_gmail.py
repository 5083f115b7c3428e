"""`POST /api/v1/webhooks/gmail`: Gmail's Pub/Sub push.

Order of checks: the body within the size limit (413), the channel configured (503), the
bearer token (401), the envelope (400), then the mailbox synced and every new message
stored before answering 200. Pub/Sub delivers again on any other answer, so a Gmail or
database failure is a 503: the push comes back and the sync re-reads from the stored
history id.
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from litestar import Request, Response, post

from adapters.channels.gmail.envelope import decode_push
from adapters.channels.gmail.errors import GmailError, PushAuthError, PushCertsUnavailable
from service.state import ServiceState

log = logging.getLogger(__name__)

NOT_CONFIGURED = (
    "the Gmail channel is not configured on this service: set GMAIL_PUSH_AUDIENCE, "
    "GMAIL_MAILBOX and GMAIL_SERVICE_ACCOUNT_FILE or GMAIL_TOKEN_FILE"
)
NO_CREDENTIALS = (
    "the Gmail API is not configured on this service: set GMAIL_MAILBOX and "
    "GMAIL_SERVICE_ACCOUNT_FILE or GMAIL_TOKEN_FILE"
)


class PushReceipt(msgspec.Struct, frozen=True, kw_only=True):
    mailbox: str
    history_id: int | None
    stored: int
    skipped: int
    note: str | None = None


def _problem(status: int, error: str, detail: str) -> Response[Any]:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return Response({"error": error, "detail": detail}, status_code=status, headers=headers)


@post("/api/v1/webhooks/gmail", status_code=200, tags=["webhooks"])
async def gmail_push(request: Request[Any, Any, Any]) -> Response[Any]:
    """Gmail's Pub/Sub push (OIDC bearer token): new mail fetched and stored; answered
    later, in the same thread, by a worker."""
    body = await request.body()
    state: ServiceState = request.app.state.service
    gmail = state.runtime.gmail
    if gmail.verifier is None:
        return _problem(503, "not_configured", NOT_CONFIGURED)
    try:
        await gmail.verifier.verify(request.headers.get("authorization"))
    except PushAuthError as exc:
        log.warning("gmail push refused: %s", exc)
        return _problem(401, "unauthorized", "a valid Pub/Sub OIDC bearer token is required")
    except PushCertsUnavailable as exc:
        log.error("gmail push not verifiable now: %s", exc)
        return _problem(503, "unavailable", "push tokens cannot be verified right now")
    push = decode_push(body)  # ValidationError: 400 naming the field
    if gmail.sync is None:
        return _problem(503, "not_configured", NO_CREDENTIALS)
    try:
        report = await gmail.sync.on_push(push)
    except GmailError as exc:
        log.error("gmail sync of %s failed: %s", push.mailbox, exc)
        return _problem(503, "unavailable", "Gmail could not be read; Pub/Sub will retry")
    log.info(
        "gmail push for %s: %d stored, %d skipped, history id %s",
        report.mailbox,
        len(report.stored),
        len(report.skipped),
        report.history_id,
    )
    receipt = PushReceipt(
        mailbox=report.mailbox,
        history_id=report.history_id,
        stored=len(report.stored),
        skipped=len(report.skipped),
        note=report.note,
    )
    return Response(receipt, status_code=200)
