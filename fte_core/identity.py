"""Normalising the addresses customers write from, so one person is one customer.

Phone numbers are always stored as kind PHONE in E.164, whatever the channel they arrived
on: a WhatsApp number and the phone typed into the web form are the same identity.
IdentifierKind.WHATSAPP is accepted on lookup and mapped to PHONE.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import msgspec

from fte_core.errors import ValidationError
from fte_core.models import (
    Channel,
    CustomerResolution,
    Identifier,
    IdentifierKind,
    InboundMessage,
)
from fte_core.ports import DeliveryTarget

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


def identifier_key(identifier: Identifier) -> str:
    """ "email:a@b.c" / "phone:+1...": how messages record the addresses they came from."""
    return f"{identifier.kind.value}:{identifier.value}"


def sender_keys(message: InboundMessage) -> list[str]:
    """The identifier keys of every address a message claims (none is not an error here:
    storing is not where a sender is required)."""
    keys = []
    if message.sender_email:
        keys.append(
            identifier_key(Identifier(IdentifierKind.EMAIL, normalize_email(message.sender_email)))
        )
    if message.sender_phone:
        keys.append(
            identifier_key(Identifier(IdentifierKind.PHONE, normalize_phone(message.sender_phone)))
        )
    return keys


def proven_identifiers(message: InboundMessage) -> tuple[Identifier, ...]:
    """The address the channel proved (the phone on WhatsApp, the email elsewhere), if any.

    A web form's fields are claims; they prove nothing unless the intake says how.
    """
    if message.verified_by is None:
        return ()
    if message.channel is Channel.WHATSAPP and message.sender_phone:
        return (Identifier(IdentifierKind.PHONE, normalize_phone(message.sender_phone)),)
    if message.sender_email:
        return (Identifier(IdentifierKind.EMAIL, normalize_email(message.sender_email)),)
    return ()


_TICKET_REFERENCE = re.compile(r"\bTKT[-\s]?(\d{1,12})\b", re.I)


def ticket_references(*texts: str | None) -> tuple[str, ...]:
    """Ticket numbers quoted in a message ("about ticket TKT-000094", "tkt 94"), first
    mention first, in the stored form (TKT- and at least six digits)."""
    found: dict[str, None] = {}
    for text in texts:
        for match in _TICKET_REFERENCE.finditer(text or ""):
            number = int(match.group(1))
            if number > 0:
                found.setdefault(f"TKT-{number:06d}", None)
    return tuple(found)


def delivery_target(
    channel: Channel,
    sender_ids: Sequence[str],
    subject: str | None,
    thread_ref: str | None,
    provider_message_id: str | None,
) -> DeliveryTarget | None:
    """Where an answer to a message goes: the phone it came from on WhatsApp, the email
    address elsewhere (a web form's answer is also shown on its status page)."""
    prefix = "phone:" if channel is Channel.WHATSAPP else "email:"
    address = next((s[len(prefix) :] for s in sender_ids if s.startswith(prefix)), None)
    if address is None:
        return None
    return DeliveryTarget(
        channel=channel,
        address=address,
        subject=subject,
        thread_ref=thread_ref,
        in_reply_to=provider_message_id,
    )


def with_proven(resolution: CustomerResolution, proven: Sequence[Identifier]) -> CustomerResolution:
    """The resolution as stored once this message's proven addresses are marked."""
    customer = resolution.customer
    verified = tuple(i for i in customer.identifiers if i in customer.verified or i in proven)
    if verified == customer.verified:
        return resolution
    return msgspec.structs.replace(
        resolution, customer=msgspec.structs.replace(customer, verified=verified)
    )
