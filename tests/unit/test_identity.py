from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fte_core.errors import ValidationError
from fte_core.identity import (
    identifiers_for,
    normalize_email,
    normalize_identifier,
    normalize_phone,
)
from fte_core.models import Channel, Identifier, IdentifierKind, InboundMessage


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("whatsapp:+1 415-555-0101", "+14155550101"),
        ("+1 (415) 555.0101", "+14155550101"),
        ("0044 20 7946 0958", "+442079460958"),
        ("  +49-30-1234567 ", "+49301234567"),
        ("WhatsApp:+447700900123", "+447700900123"),
    ],
)
def test_phone_numbers_normalise_to_e164(raw: str, expected: str) -> None:
    assert normalize_phone(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "(415) 555 0101",
        "4155550101",
        "+1 415",
        "+1234567890123456",
        "+0 415 555 0101",
        "+1-abc-555",
        "",
    ],
)
def test_ambiguous_or_malformed_phone_numbers_are_rejected(raw: str) -> None:
    with pytest.raises(ValidationError) as error:
        normalize_phone(raw)
    assert error.value.field == "phone"


@given(st.from_regex(r"\+[1-9][0-9]{7,14}", fullmatch=True))
def test_normalised_phone_is_a_fixed_point(number: str) -> None:
    assert normalize_phone(number) == number
    assert normalize_phone(normalize_phone(number)) == number


def test_email_is_trimmed_and_lower_cased() -> None:
    assert normalize_email("  Ana.Lopez@Example.COM ") == "ana.lopez@example.com"


@pytest.mark.parametrize(
    "raw", ["ana", "ana@", "@example.com", "ana@example", "a b@example.com", "a@@b.io"]
)
def test_malformed_emails_are_rejected(raw: str) -> None:
    with pytest.raises(ValidationError) as error:
        normalize_email(raw)
    assert error.value.field == "email"


def _message(**kw: str) -> InboundMessage:
    return InboundMessage(
        channel=Channel.WHATSAPP,
        provider_message_id="SM1",
        text="hi",
        received_at=datetime(2025, 1, 1, tzinfo=UTC),
        **kw,  # type: ignore[arg-type]
    )


def test_identifiers_for_uses_phone_kind_for_whatsapp_and_email_first() -> None:
    message = _message(sender_phone="whatsapp:+14155550101", sender_email="Ana@Example.com")
    assert identifiers_for(message) == (
        Identifier(IdentifierKind.EMAIL, "ana@example.com"),
        Identifier(IdentifierKind.PHONE, "+14155550101"),
    )


def test_message_without_identifier_is_rejected() -> None:
    with pytest.raises(ValidationError) as error:
        identifiers_for(_message())
    assert error.value.field == "sender"


def test_whatsapp_identifier_normalises_to_phone() -> None:
    assert normalize_identifier(
        Identifier(IdentifierKind.WHATSAPP, "whatsapp:+1 415 555 0101")
    ) == (Identifier(IdentifierKind.PHONE, "+14155550101"))
