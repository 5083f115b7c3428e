"""Any Twilio form gives a valid message or a ValidationError naming a field (SPEC 12)."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from adapters.channels.whatsapp.parser import parse_message, parse_status
from fte_core.errors import ValidationError
from fte_core.identity import normalize_phone

NOW = datetime(2026, 11, 30, tzinfo=UTC)
FIELDS = (
    "MessageSid",
    "From",
    "Body",
    "NumMedia",
    "ProfileName",
    "MediaContentType0",
    "MediaUrl0",
    "MessageStatus",
    "ErrorCode",
)
plausible = st.one_of(
    st.from_regex(r"\A(SM|MM)[0-9a-f]{32}\Z"),
    st.from_regex(r"\Awhatsapp:\+[1-9][0-9]{7,14}\Z"),
    st.sampled_from(["0", "1", "2", "11", "-1", "delivered", "failed", "63016"]),
    st.text(max_size=60),
)
forms = st.dictionaries(st.sampled_from(FIELDS), plausible, max_size=len(FIELDS))


@given(forms)
def test_any_message_form_parses_or_names_a_field(form: dict[str, str]) -> None:
    try:
        message = parse_message(form, NOW)
    except ValidationError as exc:
        field = exc.field
    else:
        field = None
    if field is not None:
        assert field in FIELDS or field.startswith("Media")
        return
    assert message.text.strip()
    assert message.sender_phone == normalize_phone(message.sender_phone or "")
    assert message.provider_message_id == form["MessageSid"]
    assert "\x00" not in message.text


def assert_named(exc: ValidationError) -> None:
    assert exc.field in FIELDS


@given(forms)
def test_any_status_form_parses_or_names_a_field(form: dict[str, str]) -> None:
    try:
        report = parse_status(form)
    except ValidationError as exc:
        assert_named(exc)
        return
    assert report.provider_message_id == form["MessageSid"]
