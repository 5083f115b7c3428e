from __future__ import annotations

import re
import unicodedata

import msgspec
import pytest

from fte_core.errors import ValidationError
from fte_core.formatting import (
    DEFAULT_CHANNEL_CONFIGS,
    ELLIPSIS,
    ChannelConfig,
    count_words,
    format_for_channel,
    normalize_text,
    split_message,
    split_sentences,
    truncate,
)
from fte_core.handover import handover_body
from fte_core.inbound import strip_quoted_history
from fte_core.models import Channel

TICKET = "TKT-000123"
ANSWER = (
    "On the sign-in page click Forgot password? and enter your email. "
    "Open the link and type the new password twice. The link expires after 60 minutes."
)


def _gaps(text: str, parts: tuple[str, ...]) -> list[str]:
    """What lies before, between and after the parts, asserting they are in-order slices."""
    gaps: list[str] = []
    pos = 0
    for part in parts:
        found = text.index(part, pos)
        gaps.append(text[pos:found])
        pos = found + len(part)
    gaps.append(text[pos:])
    return gaps


# --- email ------------------------------------------------------------------------------


def test_email_has_named_greeting_body_and_signature_with_ticket() -> None:
    reply = format_for_channel(ANSWER, Channel.EMAIL, ticket_number=TICKET, customer_name="Ana")
    assert reply.channel is Channel.EMAIL
    assert reply.parts == (
        f"Dear Ana,\n\n{ANSWER}\n\nBest regards,\nCustomer Support\nTicket {TICKET}",
    )


def test_email_without_name_says_hello() -> None:
    reply = format_for_channel(ANSWER, Channel.EMAIL, ticket_number=TICKET)
    assert reply.text.startswith("Hello,\n\n")


def test_email_word_limit_cuts_body_at_a_sentence_end_and_keeps_signature() -> None:
    body = " ".join(f"Sentence number {i} has exactly seven words." for i in range(200))
    reply = format_for_channel(body, Channel.EMAIL, ticket_number=TICKET, customer_name="Ana")
    text = reply.text
    assert count_words(text) <= 500
    assert text.startswith("Dear Ana,")
    assert text.endswith(f"Customer Support\nTicket {TICKET}")
    body_part = text.split("\n\n")[1]
    assert body_part.endswith("seven words.")
    assert count_words(text) > 490  # filled, not gutted


def test_one_enormous_sentence_is_cut_at_a_word_with_an_ellipsis() -> None:
    body = "word " * 2000
    text = format_for_channel(body, Channel.EMAIL, ticket_number=TICKET).text
    assert count_words(text) <= 500
    assert f"word{ELLIPSIS}\n\nBest regards," in text


def test_customer_name_is_cleaned_and_bounded() -> None:
    reply = format_for_channel(
        "Hi.", Channel.EMAIL, ticket_number=TICKET, customer_name="  Ana\n\tMaria  " + "x " * 50
    )
    greeting = reply.text.split("\n", 1)[0]
    assert greeting.startswith("Dear Ana Maria ")
    assert count_words(greeting) <= 5


def test_blank_customer_name_counts_as_unknown() -> None:
    reply = format_for_channel("Hi.", Channel.WEB_FORM, ticket_number=TICKET, customer_name="  ")
    assert reply.text.startswith("Hello,\n\n")


# --- whatsapp ---------------------------------------------------------------------------


def test_whatsapp_short_answer_is_one_message_with_ticket_and_no_greeting() -> None:
    reply = format_for_channel(ANSWER, Channel.WHATSAPP, ticket_number=TICKET, customer_name="Ana")
    assert reply.parts == (f"{ANSWER}\n\nTicket {TICKET}",)


def test_whatsapp_long_answer_splits_at_sentence_ends_in_order() -> None:
    sentences = [f"This is sentence {i} of a long answer about workspaces." for i in range(60)]
    reply = format_for_channel(" ".join(sentences), Channel.WHATSAPP, ticket_number=TICKET)
    assert len(reply.parts) > 1
    assert all(len(p) <= 1600 for p in reply.parts)
    assert all(p.endswith((".", TICKET)) for p in reply.parts)
    rejoined = " ".join(reply.parts)
    assert rejoined.startswith(" ".join(sentences))
    assert reply.parts[-1].endswith(f"Ticket {TICKET}")


def test_whatsapp_total_length_is_bounded() -> None:
    body = "A useful sentence about tasks. " * 1000
    reply = format_for_channel(body, Channel.WHATSAPP, ticket_number=TICKET)
    assert sum(len(p) for p in reply.parts) <= 4800
    assert reply.parts[-1].endswith(f"Ticket {TICKET}")


# --- web form ---------------------------------------------------------------------------


def test_web_form_includes_ticket_and_how_to_check_status() -> None:
    reply = format_for_channel(ANSWER, Channel.WEB_FORM, ticket_number=TICKET, customer_name="Ana")
    text = reply.text
    assert text.startswith("Hello Ana,\n\n")
    assert TICKET in text
    assert "status page: /" in text
    assert count_words(text) <= 300


def test_web_form_word_limit_counts_the_whole_message() -> None:
    body = "Open Settings and choose Members. " * 200
    text = format_for_channel(body, Channel.WEB_FORM, ticket_number=TICKET).text
    assert 280 < count_words(text) <= 300
    assert TICKET in text


def test_status_url_comes_from_the_config() -> None:
    config = msgspec.structs.replace(
        DEFAULT_CHANNEL_CONFIGS[Channel.WEB_FORM], status_url="https://support.tasklane.io/"
    )
    text = format_for_channel("Hi.", Channel.WEB_FORM, ticket_number=TICKET, config=config).text
    assert "status page: https://support.tasklane.io/" in text


# --- bad input --------------------------------------------------------------------------


@pytest.mark.parametrize("ticket", ["", "   ", "TKT 1", "x" * 65])
def test_bad_ticket_number_is_a_validation_error(ticket: str) -> None:
    with pytest.raises(ValidationError) as info:
        format_for_channel("Hi.", Channel.EMAIL, ticket_number=ticket)
    assert info.value.field == "ticket_number"


def test_config_for_another_channel_is_refused() -> None:
    with pytest.raises(ValidationError) as info:
        format_for_channel(
            "Hi.",
            Channel.EMAIL,
            ticket_number=TICKET,
            config=DEFAULT_CHANNEL_CONFIGS[Channel.WHATSAPP],
        )
    assert info.value.field == "config"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"max_words": 0}, "max_words"),
        ({"max_chars_per_part": -5}, "max_chars_per_part"),
        ({"greeting_named": "Dear {nam},"}, "greeting_named"),
        ({"closing": ("Ticket {ticket_number} {secret}",)}, "closing"),
        ({"greeting_named": "Dear {name"}, "greeting_named"),
    ],
)
def test_channel_config_rejects_bad_settings(changes: dict[str, object], field: str) -> None:
    raw = msgspec.json.encode(DEFAULT_CHANNEL_CONFIGS[Channel.EMAIL])
    data = msgspec.json.decode(raw, type=dict[str, object]) | changes
    with pytest.raises(ValidationError) as info:
        msgspec.convert(data, ChannelConfig)
    assert info.value.field == field


def test_channel_config_forbids_unknown_fields() -> None:
    raw = b'{"channel": "email", "tone": "formal", "max_word": 10}'
    with pytest.raises(msgspec.ValidationError, match="max_word"):
        msgspec.json.decode(raw, type=ChannelConfig)


def test_channel_configs_round_trip_through_json() -> None:
    for config in DEFAULT_CHANNEL_CONFIGS.values():
        encoded = msgspec.json.encode(config)
        assert msgspec.json.decode(encoded, type=ChannelConfig) == config


# --- primitives -------------------------------------------------------------------------


def test_split_message_prefers_sentences_then_words_then_hard_cuts() -> None:
    assert split_message("One two. Three four.", 11) == ("One two.", "Three four.")
    assert split_message("alpha beta gamma", 11) == ("alpha beta", "gamma")
    assert split_message("abcdefghij", 4) == ("abcd", "efgh", "ij")


def test_split_message_never_separates_a_combining_mark_from_its_letter() -> None:
    text = "abc" + "e\u0301" * 3  # "é" written as e + combining acute accent
    parts = split_message(text, 4)
    assert all(p[0] != "\u0301" for p in parts)
    assert "".join(parts) == text


def test_split_message_parts_are_ordered_slices_separated_by_whitespace() -> None:
    text = "First sentence here.\n\nSecond one is a little longer. Third!   Fourth?"
    parts = split_message(text, 25)
    gaps = _gaps(text, parts)
    assert all(gap.strip() == "" for gap in gaps)
    assert all(parts)


def test_split_message_rejects_a_non_positive_limit() -> None:
    with pytest.raises(ValidationError) as info:
        split_message("text", 0)
    assert info.value.field == "limit"


def test_split_sentences_handles_quotes_newlines_and_dots_inside_words() -> None:
    text = 'Go to app.tasklane.io now. It says "Saved." Done\nNext line'
    assert split_sentences(text) == [
        "Go to app.tasklane.io now.",
        'It says "Saved."',
        "Done",
        "Next line",
    ]


def test_truncate_keeps_whole_sentences() -> None:
    assert truncate("One two. Three four. Five.", max_words=4) == "One two. Three four."
    assert truncate("One two. Three four.", max_chars=12) == "One two."
    assert truncate("short", max_words=10) == "short"


def test_normalize_text_collapses_space_and_removes_controls() -> None:
    text = "a\x00b\r\n\r\n\r\n\r\nc\t\td \ud800e  "
    assert normalize_text(text) == "a b\n\nc d e"


def test_count_words_splits_on_any_whitespace() -> None:
    assert count_words(" one\ntwo\u00a0three  ") == 3


# --- hand-over --------------------------------------------------------------------------

REASONS = [
    "pricing",
    "refund",
    "legal",
    "human_request",
    "negative_sentiment",
    "account_security",
    "no_kb_match",
    "policy_error",
    "unapproved_commitment",
    "pricing_disclosure",
    "prompt_leak",
    "ungrounded",
]
_FORBIDDEN = re.compile(
    r"refund|discount|credit|compensat|guarantee|promise|polic|rule|\blegal\b|lawyer|"
    r"\d|today|tomorrow|within|hours?\b|days?\b|asap|right away|_",
    re.I,
)


@pytest.mark.parametrize("channel", list(Channel))
@pytest.mark.parametrize("reason", REASONS)
def test_handover_never_reveals_reasons_rules_times_or_outcomes(
    reason: str, channel: Channel
) -> None:
    text = handover_body(reason, channel)
    assert reason not in text
    assert not _FORBIDDEN.search(text), _FORBIDDEN.search(text)
    assert "follow up" in text


@pytest.mark.parametrize(
    ("reason", "team"),
    [
        ("pricing", "billing team"),
        ("refund", "billing team"),
        ("account_security", "security team"),
        ("legal", "member of our team"),
        ("human_request", "member of our team"),
        ("something_new", "member of our team"),
    ],
)
def test_handover_names_the_right_team(reason: str, team: str) -> None:
    for channel in Channel:
        assert team in handover_body(reason, channel).lower()


def test_handover_fits_whatsapp_preferred_length_once_formatted() -> None:
    body = handover_body("refund", Channel.WHATSAPP)
    reply = format_for_channel(body, Channel.WHATSAPP, ticket_number=TICKET)
    assert len(reply.parts) == 1
    assert len(reply.parts[0]) <= 300


# --- quoted history ---------------------------------------------------------------------


def test_strips_gmail_quote_wrapped_over_two_lines() -> None:
    text = (
        "Thanks, that worked!\n\nOn Mon, 3 Mar 2025 at 10:04, Tasklane Support <\n"
        "support@tasklane.io> wrote:\n> Dear Ana,\n> Go to Settings.\n"
    )
    assert strip_quoted_history(text) == "Thanks, that worked!"


@pytest.mark.parametrize(
    "history",
    [
        "On Tue, Mar 4, 2025 at 9:00 AM Ana <ana@example.com> wrote:\nold text",
        "-----Original Message-----\nFrom: Ana\nold text",
        "________________________________\nFrom: Ana\nSent: Monday\nold",
        "From: Tasklane Support <support@tasklane.io>\nSent: Tuesday, March 4\nTo: Ana\nold",
        "Le mar. 4 mars 2025 à 09:00, Ana <ana@example.com> a écrit :\nold",
        "-- \nAna Lopez\nHead of Ops",
        "Sent from my iPhone",
    ],
)
def test_strips_common_history_markers(history: str) -> None:
    text = f"My board will not load.\nIt spins forever.\n\n{history}"
    assert strip_quoted_history(text) == "My board will not load.\nIt spins forever."


def test_drops_inline_quoted_lines_but_keeps_replies_between_them() -> None:
    text = "> Which browser?\nChrome 120.\n> Which plan?\nBusiness."
    assert strip_quoted_history(text) == "Chrome 120.\nBusiness."


def test_keeps_ordinary_text_mentioning_from_and_on() -> None:
    text = "From: the Projects page, on Monday, I could not export.\nOn mobile it works."
    assert strip_quoted_history(text) == text


def test_message_that_is_only_a_quote_is_not_emptied() -> None:
    assert strip_quoted_history("> only quoted\n") == "> only quoted"


def test_normalize_text_drops_exactly_surrogates_and_spaces_exactly_controls() -> None:
    """Every code point against the Unicode categories the regexes stand for: a lone
    surrogate (Cs) is dropped, a control (Cc) becomes a space (CR a newline), whitespace
    collapses to one space, everything else is kept."""
    for code in range(0x110000):
        char = chr(code)
        category = unicodedata.category(char)
        if category == "Cs":
            expected = "ab"
        elif char in "\n\r":
            expected = "a\nb"
        elif category == "Cc" or char.isspace():
            expected = "a b"
        else:
            expected = f"a{char}b"
        assert normalize_text(f"a{char}b") == expected, hex(code)
