"""Twilio's WhatsApp webhook forms into our types: an inbound message, or a status report.

Any form gives a message or a ValidationError naming the field (HTTP 400), never another
exception: the forms come from the internet, signed or not.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime

import msgspec

from fte_core.errors import ValidationError
from fte_core.identity import normalize_phone
from fte_core.models import Attachment, Channel, DeliveryStatus, InboundMessage, Verification

# Twilio ids: two letters and 32 hex digits (SM..., MM... for media messages)
_SID = re.compile(r"^[A-Z]{2}[0-9a-fA-F]{32}$")
_MAX_BODY = 20_000  # WhatsApp itself allows 4,096 characters
_MAX_MEDIA = 10  # Twilio's own limit per message
_MAX_NAME = 200
PREFIX = "whatsapp:"

# Twilio's MessageStatus values and ours; a part never moves back (fte_core.delivery)
_STATUSES = {
    "accepted": DeliveryStatus.QUEUED,
    "scheduled": DeliveryStatus.QUEUED,
    "queued": DeliveryStatus.QUEUED,
    "sending": DeliveryStatus.SENDING,
    "sent": DeliveryStatus.SENT,
    "delivered": DeliveryStatus.DELIVERED,
    "read": DeliveryStatus.READ,
    "failed": DeliveryStatus.FAILED,
    "undelivered": DeliveryStatus.UNDELIVERED,
    "canceled": DeliveryStatus.UNDELIVERED,
}


class StatusReport(msgspec.Struct, frozen=True, kw_only=True):
    provider_message_id: str
    status: DeliveryStatus
    error_code: str | None = None


def parse_message(form: Mapping[str, str], received_at: datetime) -> InboundMessage:
    """A customer's WhatsApp message. The sender's phone is proven: Twilio signed it (the
    caller checked the signature before parsing)."""
    sid = _sid(form, "MessageSid")
    phone = whatsapp_number(form.get("From"), "From")
    media = _media(form)
    body = _text(form.get("Body", ""), "Body", _MAX_BODY).strip()
    if not body and not media:
        raise ValidationError("Body", "an empty message without media")
    text = body or media_note(media)
    name = _text(form.get("ProfileName", ""), "ProfileName", _MAX_NAME).strip() or None
    return InboundMessage(
        channel=Channel.WHATSAPP,
        provider_message_id=sid,
        text=text,
        received_at=received_at,
        sender_phone=phone,
        sender_name=name,
        attachments=media,
        verified_by=Verification.PROVIDER_SIGNED,
    )


def media_note(media: tuple[Attachment, ...]) -> str:
    """What a media-only message reads as: the agent and the operators see that something
    was sent that only a person can look at."""
    kinds = ", ".join(sorted({m.content_type for m in media}))
    return f"[The customer sent {len(media)} attachment(s) without text: {kinds}]"


def parse_status(form: Mapping[str, str]) -> StatusReport:
    """A delivery status callback for one message we sent."""
    sid = _sid(form, "MessageSid")
    raw = form.get("MessageStatus") or form.get("SmsStatus") or ""
    status = _STATUSES.get(raw.strip().lower())
    if status is None:
        raise ValidationError("MessageStatus", f"unknown status {raw[:40]!r}")
    code = form.get("ErrorCode", "").strip()
    if code and not code.isdigit():
        raise ValidationError("ErrorCode", "must be a number")
    return StatusReport(provider_message_id=sid, status=status, error_code=code or None)


def whatsapp_number(value: str | None, field: str) -> str:
    """`whatsapp:+14155550101` -> `+14155550101` (E.164), or ValidationError(field)."""
    if not value or not value.lower().startswith(PREFIX):
        raise ValidationError(field, "must be a WhatsApp address (whatsapp:+E164)")
    try:
        return normalize_phone(value[len(PREFIX) :])
    except ValidationError as exc:
        raise ValidationError(field, exc.detail) from exc


def _sid(form: Mapping[str, str], field: str) -> str:
    value = form.get(field, "").strip()
    if not _SID.match(value):
        raise ValidationError(field, "must be a Twilio message id (two letters, 32 hex digits)")
    return value


def _text(value: str, field: str, limit: int) -> str:
    if len(value) > limit:
        raise ValidationError(field, f"longer than {limit} characters")
    if "\x00" in value:
        raise ValidationError(field, "contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValidationError(field, "is not valid text (lone surrogate)") from exc
    return value


def _media(form: Mapping[str, str]) -> tuple[Attachment, ...]:
    raw = form.get("NumMedia", "0").strip() or "0"
    if not raw.isdigit() or int(raw) > _MAX_MEDIA:
        raise ValidationError("NumMedia", f"must be a number from 0 to {_MAX_MEDIA}")
    found = []
    for i in range(int(raw)):
        kind = _text(form.get(f"MediaContentType{i}", ""), f"MediaContentType{i}", 100)
        kind = kind.strip() or "application/octet-stream"
        url = _text(form.get(f"MediaUrl{i}", ""), f"MediaUrl{i}", 2000).strip()
        name = url.rsplit("/", 1)[-1][:200] if url else ""
        found.append(Attachment(filename=name or f"media-{i}", content_type=kind))
    return tuple(found)
