"""The Pub/Sub push envelope Gmail sends: `{"message": {"data": base64(JSON
{"emailAddress", "historyId"}), "messageId", ...}, "subscription"}`.

Any body decodes to a PushNotification or a ValidationError naming the field (a 400).
"""

from __future__ import annotations

import base64
import binascii
from typing import TypeVar

import msgspec

from fte_core.errors import ValidationError
from fte_core.identity import normalize_email

_MAX_HISTORY_ID = 2**63 - 1
_T = TypeVar("_T")


class PushNotification(msgspec.Struct, frozen=True, kw_only=True):
    """What a Gmail push says: this mailbox changed, up to this history id."""

    mailbox: str
    history_id: int
    push_id: str | None = None  # Pub/Sub's message id (for logs)


class _PubSubMessage(msgspec.Struct, frozen=True, kw_only=True):
    data: str
    message_id: str | None = msgspec.field(default=None, name="messageId")


class _Envelope(msgspec.Struct, frozen=True, kw_only=True):
    message: _PubSubMessage
    subscription: str | None = None


class _Notification(msgspec.Struct, frozen=True, kw_only=True):
    email_address: str = msgspec.field(name="emailAddress")
    history_id: int | str = msgspec.field(name="historyId")


def decode_push(body: bytes) -> PushNotification:
    """The push body as Pub/Sub sends it; ValidationError naming the field otherwise."""
    envelope = _decode(body, _Envelope, "body")
    data = envelope.message.data.strip().replace("-", "+").replace("_", "/")
    try:
        raw = base64.b64decode(data + "=" * (-len(data) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValidationError("message.data", "not base64") from exc
    notification = _decode(raw, _Notification, "message.data")
    return PushNotification(
        mailbox=_mailbox(notification.email_address),
        history_id=_history_id(notification.history_id),
        push_id=envelope.message.message_id,
    )


def _decode(raw: bytes, kind: type[_T], field: str) -> _T:
    try:
        return msgspec.json.decode(raw, type=kind)
    except msgspec.ValidationError as exc:
        where = str(exc).rsplit("at `$.", 1)
        name = f"{field}.{where[1].rstrip('`')}" if len(where) == 2 else field
        raise ValidationError(name, str(exc)) from exc
    except msgspec.DecodeError as exc:
        raise ValidationError(field, f"malformed JSON: {exc}") from exc


def _mailbox(value: str) -> str:
    try:
        return normalize_email(value)
    except ValidationError as exc:
        raise ValidationError("message.data.emailAddress", exc.detail) from exc


def _history_id(value: int | str) -> int:
    text = str(value).strip()
    if not text.isascii() or not text.isdigit() or not 0 < int(text) <= _MAX_HISTORY_ID:
        raise ValidationError("message.data.historyId", f"not a history id: {value!r}")
    return int(text)
