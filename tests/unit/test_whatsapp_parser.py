"""Twilio's WhatsApp forms into InboundMessage / StatusReport, and the signature check."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from twilio.request_validator import RequestValidator

from adapters.channels.whatsapp.parser import parse_message, parse_status
from adapters.channels.whatsapp.signature import SignatureError, check_signature, webhook_url
from fte_core.errors import ValidationError
from fte_core.models import Channel, DeliveryStatus, Verification

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
SID = "SM" + "a" * 32
TOKEN = "t" * 32
URL = "https://support.example.com/api/v1/webhooks/whatsapp"


def form(**fields: str) -> dict[str, str]:
    base = {
        "MessageSid": SID,
        "AccountSid": "AC" + "1" * 32,
        "From": "whatsapp:+14155550101",
        "To": "whatsapp:+14155238886",
        "Body": "How do I reset my password?",
        "NumMedia": "0",
        "ProfileName": "Ana Lima",
        "WaId": "14155550101",
    }
    base.update(fields)
    return base


def test_a_text_message() -> None:
    message = parse_message(form(), NOW)
    assert message.channel is Channel.WHATSAPP
    assert message.provider_message_id == SID
    assert message.sender_phone == "+14155550101"
    assert message.sender_name == "Ana Lima"
    assert message.text == "How do I reset my password?"
    assert message.verified_by is Verification.PROVIDER_SIGNED
    assert message.attachments == ()


def test_a_media_message_keeps_its_text_and_notes_the_media() -> None:
    message = parse_message(
        form(
            Body="here is the error",
            NumMedia="1",
            MediaContentType0="image/jpeg",
            MediaUrl0="https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1",
        ),
        NOW,
    )
    assert message.text == "here is the error"
    assert [(a.filename, a.content_type) for a in message.attachments] == [("ME1", "image/jpeg")]


def test_a_media_only_message_reads_as_a_note() -> None:
    message = parse_message(form(Body="", NumMedia="1", MediaContentType0="audio/ogg"), NOW)
    assert "1 attachment(s)" in message.text
    assert "audio/ogg" in message.text


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"MessageSid": "nope"}, "MessageSid"),
        ({"From": "+14155550101"}, "From"),
        ({"From": "whatsapp:555"}, "From"),
        ({"Body": "", "NumMedia": "0"}, "Body"),
        ({"NumMedia": "x"}, "NumMedia"),
        ({"Body": "a\x00b"}, "Body"),
        ({"Body": "x" * 20_001}, "Body"),
    ],
)
def test_bad_forms_name_the_field(fields: dict[str, str], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_message(form(**fields), NOW)
    assert caught.value.field == field


def test_status_reports() -> None:
    report = parse_status({"MessageSid": SID, "MessageStatus": "undelivered", "ErrorCode": "63016"})
    assert report.status is DeliveryStatus.UNDELIVERED
    assert report.error_code == "63016"
    assert parse_status({"MessageSid": SID, "MessageStatus": "read"}).status is DeliveryStatus.READ
    with pytest.raises(ValidationError) as caught:
        parse_status({"MessageSid": SID, "MessageStatus": "exploded"})
    assert caught.value.field == "MessageStatus"


def signed(url: str, params: dict[str, str]) -> str:
    return str(RequestValidator(TOKEN).compute_signature(url, params))


def test_a_valid_signature_passes() -> None:
    params = form()
    check_signature(TOKEN, URL, params, signed(URL, params))


def test_a_tampered_body_fails() -> None:
    params = form()
    signature = signed(URL, params)
    with pytest.raises(SignatureError):
        check_signature(TOKEN, URL, form(Body="I want a refund"), signature)


def test_the_wrong_url_scheme_fails() -> None:
    params = form()
    signature = signed(URL.replace("https://", "http://"), params)
    with pytest.raises(SignatureError):
        check_signature(TOKEN, URL, params, signature)


def test_a_missing_signature_fails() -> None:
    with pytest.raises(SignatureError, match="missing"):
        check_signature(TOKEN, URL, form(), None)


def test_the_webhook_url_is_the_public_one() -> None:
    assert webhook_url("https://support.example.com/", "/api/v1/webhooks/whatsapp") == URL
    assert webhook_url("https://x.io", "/p", "a=1") == "https://x.io/p?a=1"
