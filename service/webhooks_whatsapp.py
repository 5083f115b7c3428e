"""Twilio's WhatsApp webhooks (SPEC 8): customers' messages and delivery status reports.

Both are signed: the X-Twilio-Signature is checked against FTE_PUBLIC_BASE_URL + path
(403 otherwise) before the form is read as anything. A message is stored and queued for a
worker through the same intake as the web form (Agent.submit, idempotent on MessageSid)
and answered at once with empty TwiML; the reply goes out later through the REST API
(fte.outbound). Without the Twilio settings both answer 503 saying what to set.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

from litestar import Request, Response, post
from litestar.exceptions import PermissionDeniedException

from adapters.channels.whatsapp.parser import parse_message, parse_status
from adapters.channels.whatsapp.signature import SignatureError, check_signature, webhook_url
from fte_core.clock import utc_now
from fte_core.errors import ValidationError
from fte_core.models import Channel
from service.api import UnsupportedMediaType, runtime_of
from service.bootstrap import Runtime, whatsapp_missing

log = logging.getLogger(__name__)

MESSAGES = "/api/v1/webhooks/whatsapp"
STATUS = "/api/v1/webhooks/whatsapp/status"
FORM = "application/x-www-form-urlencoded"
TWIML = "application/xml"
MAX_FIELDS = 200
# Sent with the TwiML answer to a new message carrying media: only text is read.
MEDIA_NOTICE = (
    "Thanks, we received your attachment, but we can only read text messages here. "
    "Please type your question and we will answer it."
)
# A status report can arrive before the sender recorded the part it is about.
_UNKNOWN_RETRIES = 4


class NotConfigured(Exception):
    def __init__(self, missing: tuple[str, ...]) -> None:
        self.missing = missing
        super().__init__(f"WhatsApp is not configured: set {', '.join(missing)}")


def _not_configured(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    return Response({"error": "not_configured", "detail": str(exc)}, status_code=503)


_HANDLERS: Any = {NotConfigured: _not_configured}


def twiml(message: str | None = None) -> str:
    body = f"<Message>{escape(message)}</Message>" if message else ""
    inner = f"<Response>{body}</Response>" if body else "<Response/>"
    return f'<?xml version="1.0" encoding="UTF-8"?>{inner}'


async def signed_form(request: Request[Any, Any, Any], path: str) -> tuple[Runtime, dict[str, str]]:
    """The form Twilio posted, once its signature is checked (403 otherwise)."""
    runtime = runtime_of(request)
    settings = runtime.settings
    missing = whatsapp_missing(settings)
    if missing:
        raise NotConfigured(missing)
    kind = request.content_type[0]
    if kind != FORM:
        raise UnsupportedMediaType(kind or "none")
    try:
        text = (await request.body()).decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except UnicodeDecodeError as exc:
        raise ValidationError("body", "the form is not UTF-8") from exc
    except ValueError as exc:
        raise ValidationError("body", f"more than {MAX_FIELDS} fields") from exc
    form = dict(pairs)
    url = webhook_url(settings.base_url, path, request.url.query or "")
    try:
        check_signature(
            settings.twilio_auth_token or "", url, form, request.headers.get("x-twilio-signature")
        )
    except SignatureError as exc:
        raise PermissionDeniedException(str(exc)) from exc
    return runtime, form


@post(MESSAGES, status_code=200, tags=["channels"], exception_handlers=_HANDLERS)
async def whatsapp_message(request: Request[Any, Any, Any]) -> Response[str]:
    """A customer's WhatsApp message: stored and queued once per MessageSid; empty TwiML
    (a new message with media also gets a notice that only text is read)."""
    runtime, form = await signed_form(request, MESSAGES)
    message = parse_message(form, utc_now())
    turn = await runtime.agent.submit(message)
    notice = MEDIA_NOTICE if turn.created and message.attachments else None
    return Response(twiml(notice), media_type=TWIML)


@post(STATUS, status_code=204, tags=["channels"], exception_handlers=_HANDLERS)
async def whatsapp_status(request: Request[Any, Any, Any]) -> None:
    """A delivery status report (queued/sent/delivered/read/failed/undelivered) for a part
    of a reply; a failed part hands the ticket to a person."""
    runtime, form = await signed_form(request, STATUS)
    report = parse_status(form)
    for attempt in range(_UNKNOWN_RETRIES):
        status = await runtime.outbound.report(
            Channel.WHATSAPP, report.provider_message_id, report.status, report.error_code
        )
        if status is not None:
            return
        if attempt + 1 < _UNKNOWN_RETRIES:
            await asyncio.sleep(0.5)
    log.info("status %s for a message that is not ours", report.status.value)


ROUTES = (whatsapp_message, whatsapp_status)
