"""Normalising the addresses customers write from, so one person is one customer.

Phone numbers are always stored as kind PHONE in E.164, whatever the channel they arrived
on: a WhatsApp number and the phone typed into the web form are the same identity.
IdentifierKind.WHATSAPP is accepted on lookup and mapped to PHONE.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from fte_core.errors import ValidationError
from fte_core.models import Identifier, IdentifierKind, InboundMessage

# Deliberately simple: one @, a non-empty local part, a dotted domain, no spaces. Mail
# providers already validated the address; this only rejects garbage from the web form.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$")
_PHONE_PUNCTUATION = re.compile(r"[\s\-.()/]")
_DIGITS = re.compile(r"^\d{8,15}$")
_MAX_EMAIL_LENGTH = 254


def normalize_email(value: str) -> str:
    """Lower-cased, trimmed address; raises ValidationError("email") when malformed."""
    email = value.strip().lower()
    if len(email) > _MAX_EMAIL_LENGTH or not _EMAIL.match(email):
        raise ValidationError("email", f"not an email address: {value!r}")
    return email


def normalize_phone(value: str) -> str:
    """E.164 (`+` and 8-15 digits). A number without a country code is ambiguous, so
    "(415) 555 0101" is rejected rather than guessed."""
    raw = value.strip()
    if raw.lower().startswith("whatsapp:"):
        raw = raw[len("whatsapp:") :]
    compact = _PHONE_PUNCTUATION.sub("", raw)
    if compact.startswith("+"):
        digits = compact[1:]
    elif compact.startswith("00"):
        digits = compact[2:]
    else:
        raise ValidationError("phone", f"needs a country code (+ or 00): {value!r}")
    if not _DIGITS.match(digits) or digits.startswith("0"):
        raise ValidationError("phone", f"not an international phone number: {value!r}")
    return "+" + digits


def normalize_identifier(identifier: Identifier) -> Identifier:
    """The canonical form used for storage and lookup (WHATSAPP becomes PHONE)."""
    if identifier.kind is IdentifierKind.EMAIL:
        return Identifier(IdentifierKind.EMAIL, normalize_email(identifier.value))
    return Identifier(IdentifierKind.PHONE, normalize_phone(identifier.value))


def clean_name(name: str | None) -> str | None:
    """A display name trimmed; a blank one is no name (it must not replace a known one)."""
    stripped = name.strip() if name else ""
    return stripped or None


def canonical_identifiers(identifiers: Sequence[Identifier]) -> list[Identifier]:
    """Normalised, de-duplicated, order kept (the first one decides identity conflicts)."""
    seen: dict[Identifier, None] = {}
    for identifier in identifiers:
        seen.setdefault(normalize_identifier(identifier), None)
    if not seen:
        raise ValidationError("identifiers", "at least one identifier is required")
    return list(seen)


def identifiers_for(message: InboundMessage) -> tuple[Identifier, ...]:
    """Every identity claim the message carries, email first (the stronger identity)."""
    found: list[Identifier] = []
    if message.sender_email:
        found.append(Identifier(IdentifierKind.EMAIL, normalize_email(message.sender_email)))
    if message.sender_phone:
        found.append(Identifier(IdentifierKind.PHONE, normalize_phone(message.sender_phone)))
    if not found:
        raise ValidationError("sender", "message carries neither an email nor a phone number")
    return tuple(found)
