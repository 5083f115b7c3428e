"""A Gmail message as the agent's InboundMessage, or the reason it is not one.

Not a customer's message: the mailbox's own sent mail and drafts (the agent never answers
itself) and mail from robots (auto-replies, bounces, bulk), so the agent never loops with
another autoresponder.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime

import msgspec

from adapters.channels.gmail.api import GmailMessage
from adapters.channels.gmail.mime import TRUSTED_AUTHSERV_ID, ParsedEmail, parse_email
from fte_core.errors import ValidationError
from fte_core.models import Channel, InboundMessage, Verification

_OWN_LABELS = frozenset({"SENT", "DRAFT"})


class Skipped(msgspec.Struct, frozen=True, kw_only=True):
    message_id: str
    reason: str


def to_inbound(
    message: GmailMessage,
    mailbox: str,
    *,
    authserv_id: str = TRUSTED_AUTHSERV_ID,
    now: datetime | None = None,
) -> InboundMessage | Skipped:
    """ValidationError when the message has no usable sender (nobody to answer)."""
    own = _OWN_LABELS.intersection(message.label_ids)
    if own:
        return Skipped(message_id=message.id, reason=f"our own message ({min(own)})")
    parsed = parse_email(raw_bytes(message.raw), authserv_id=authserv_id)
    if parsed.sender == mailbox.lower():
        return Skipped(message_id=message.id, reason="sent from our own address")
    if parsed.automated:
        return Skipped(message_id=message.id, reason=f"automated: {parsed.automated}")
    return InboundMessage(
        channel=Channel.EMAIL,
        provider_message_id=message.id,
        text=_text(parsed),
        received_at=_received(message, parsed, now),
        sender_email=parsed.sender,
        sender_name=parsed.sender_name,
        subject=parsed.subject,
        thread_ref=message.thread_id or None,
        attachments=parsed.attachments,
        verified_by=Verification.EMAIL_AUTH if parsed.verified else None,
    )


def raw_bytes(raw: str) -> bytes:
    """Gmail's `raw` field: base64url, padding optional."""
    text = raw.strip().replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValidationError("raw", "not base64url") from exc


def _text(parsed: ParsedEmail) -> str:
    """The body, with the attachments named (the customer may refer to them)."""
    notes = [
        f"[attached: {a.filename or 'unnamed'} ({a.content_type}, {_size(a.size)})]"
        for a in parsed.attachments
    ]
    body = parsed.text or ("" if notes else "(no text)")
    return "\n\n".join(part for part in (body, "\n".join(notes)) if part)


def _size(size: int) -> str:
    return f"{size} bytes" if size < 1024 else f"{size / 1024:.0f} KB"


def _received(message: GmailMessage, parsed: ParsedEmail, now: datetime | None) -> datetime:
    """Gmail's own receipt time first (the Date header is the sender's claim)."""
    if message.internal_date and message.internal_date.isdigit():
        try:
            return datetime.fromtimestamp(int(message.internal_date) / 1000, UTC)
        except (OverflowError, ValueError, OSError):
            pass  # out of range: fall back to the Date header
    if parsed.date is not None and parsed.date.tzinfo is not None:
        return parsed.date.astimezone(UTC)
    return now or datetime.now(UTC)
