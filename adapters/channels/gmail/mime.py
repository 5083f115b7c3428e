"""One RFC 5322 message (Gmail's `raw` format) parsed into what the agent needs.

The body is the text/plain part when there is one, else the HTML converted to text;
charsets are decoded (an unknown one as UTF-8 with replacement characters, never an
error); attachments are noted by name, type and size, not stored. Quoted history and
signatures are kept: the rules read the whole message and the pipeline strips the
history for the model. Anything unparseable is a ValidationError naming the header.
"""

from __future__ import annotations

import codecs
import email.errors
import re
from collections.abc import Iterator
from datetime import datetime
from email import policy
from email.headerregistry import Address
from email.message import Message
from email.parser import BytesParser

import msgspec

from adapters.channels.gmail.auth_results import sender_verified
from adapters.channels.gmail.htmltext import html_to_text
from fte_core.errors import ValidationError
from fte_core.identity import normalize_email
from fte_core.models import Attachment

MAX_TEXT_CHARS = 100_000  # longer bodies are cut (and say so): the rules read it all
TRUSTED_AUTHSERV_ID = "mx.google.com"
_TRUNCATED = "\n[message truncated]"
_LINE_BREAKS = re.compile(r"[\r\n\t]+")
# Errors the standard library's header parser raises on some malformed headers.
_HEADER_ERRORS = (email.errors.MessageError, ValueError, IndexError, TypeError, AttributeError)
_ROBOT_LOCAL_PARTS = frozenset({"mailer-daemon", "postmaster", "noreply", "no-reply"})
_ROBOT_PRECEDENCE = frozenset({"bulk", "auto_reply", "junk"})


class ParsedEmail(msgspec.Struct, frozen=True, kw_only=True):
    sender: str  # the From address, normalised
    sender_name: str | None
    subject: str | None
    text: str
    attachments: tuple[Attachment, ...] = ()
    message_id: str | None = None  # the RFC 5322 Message-ID, angle brackets kept
    references: tuple[str, ...] = ()
    date: datetime | None = None
    verified: bool = False  # SPF or DKIM passed for the From domain (auth_results)
    automated: str | None = None  # why this is a robot's mail (auto-reply, bounce), if it is


def parse_email(raw: bytes, *, authserv_id: str = TRUSTED_AUTHSERV_ID) -> ParsedEmail:
    """The message, or ValidationError("from" | "body" | ...) when it cannot be one."""
    message = BytesParser(policy=policy.default).parsebytes(raw)
    address = _from(message)
    sender = _email(address.addr_spec)
    results = _all(message, "Authentication-Results")
    text, attachments = _body(message)
    return ParsedEmail(
        sender=sender,
        sender_name=_clean(address.display_name) or None,
        subject=_clean(_header(message, "Subject")) or None,
        text=text,
        attachments=attachments,
        message_id=_clean(_header(message, "Message-ID")) or None,
        references=_references(message),
        date=_date(message),
        verified=sender_verified(results, sender, authserv_id),
        automated=_automated(message, sender),
    )


def _header(message: Message, name: str) -> str:
    try:
        value = message.get(name)
        return str(value) if value is not None else ""
    except _HEADER_ERRORS as exc:
        raise ValidationError(name.lower(), f"malformed header: {exc}") from exc


def _all(message: Message, name: str) -> list[str]:
    try:
        return [str(v) for v in message.get_all(name, [])]
    except _HEADER_ERRORS as exc:
        raise ValidationError(name.lower(), f"malformed header: {exc}") from exc


def _clean(value: str) -> str:
    return _LINE_BREAKS.sub(" ", value).strip()


def _from(message: Message) -> Address:
    try:
        header = message.get("From")
        addresses = getattr(header, "addresses", ()) if header is not None else ()
    except _HEADER_ERRORS as exc:
        raise ValidationError("from", f"malformed header: {exc}") from exc
    if not addresses:
        raise ValidationError("from", "the message has no sender address")
    first: Address = addresses[0]
    return first


def _email(value: str) -> str:
    try:
        return normalize_email(value)
    except ValidationError as exc:
        raise ValidationError("from", exc.detail) from exc


def _references(message: Message) -> tuple[str, ...]:
    ids = re.findall(r"<[^<>\s]+>", _header(message, "References"))
    return tuple(dict.fromkeys(ids))


def _date(message: Message) -> datetime | None:
    try:
        header = message.get("Date")
        value = getattr(header, "datetime", None) if header is not None else None
    except _HEADER_ERRORS:
        return None  # an unreadable Date is no reason to refuse the mail: Gmail's time is used
    return value if isinstance(value, datetime) else None


def _automated(message: Message, sender: str) -> str | None:
    """Why the mail comes from a robot (RFC 3834), or None: a person wrote it."""
    auto = _header(message, "Auto-Submitted").split(";")[0].strip().lower()
    if auto and auto != "no":
        return f"Auto-Submitted: {auto}"
    precedence = _header(message, "Precedence").strip().lower()
    if precedence in _ROBOT_PRECEDENCE:
        return f"Precedence: {precedence}"
    if _header(message, "X-Autoreply") or _header(message, "X-Autorespond"):
        return "X-Autoreply"
    if sender.split("@", 1)[0] in _ROBOT_LOCAL_PARTS:
        return f"sender {sender.split('@', 1)[0]}"
    if _header(message, "Return-Path").strip() == "<>":
        return "null return path (a bounce)"
    if message.get_content_type() == "multipart/report":
        return "delivery or read report"
    return None


def _body(message: Message) -> tuple[str, tuple[Attachment, ...]]:
    plain: list[str] = []
    html: list[str] = []
    attachments: list[Attachment] = []
    for part in _leaves(message):
        kind = part.get_content_type()
        filename = _filename(part)
        inline_text = kind in ("text/plain", "text/html") and filename is None
        if not inline_text or part.get_content_disposition() == "attachment":
            payload = part.get_payload(decode=True)
            size = len(payload) if isinstance(payload, bytes) else 0
            attachments.append(Attachment(filename=filename or "", content_type=kind, size=size))
            continue
        (plain if kind == "text/plain" else html).append(_decoded(part))
    text = "\n\n".join(p.strip() for p in plain if p.strip())
    if not text:
        text = "\n\n".join(html_to_text(h) for h in html if h.strip())
    if len(text) > MAX_TEXT_CHARS:
        text = text[: MAX_TEXT_CHARS - len(_TRUNCATED)] + _TRUNCATED
    return text.strip(), tuple(attachments)


def _leaves(message: Message) -> Iterator[Message]:
    for part in message.walk():
        if not part.is_multipart():
            yield part


def _filename(part: Message) -> str | None:
    try:
        name = part.get_filename()
    except _HEADER_ERRORS:
        return "(unreadable name)"
    return (_clean(name)[:255] or None) if name else None


def _decoded(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    charset = _charset(part)
    return payload.decode(charset, errors="replace").replace("\r\n", "\n").replace("\x00", "")


def _charset(part: Message) -> str:
    try:
        name = part.get_content_charset() or "utf-8"
        codecs.lookup(name)
    except (LookupError, ValueError, UnicodeError):
        return "utf-8"
    return name
