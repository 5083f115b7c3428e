"""Channel limits hold for ANY body text: unicode, emoji, giant words, no spaces at all."""

from __future__ import annotations

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fte_core.formatting import (
    count_words,
    format_for_channel,
    render_for_channel,
    split_message,
)
from fte_core.models import Channel

TICKET = "TKT-004242"
_WS = re.compile(r"\s+")

words = st.one_of(
    st.text(min_size=1, max_size=12),
    st.sampled_from(["Go", "to", "Settings.", "Click", "Save!", "😀", "🇵🇹", "e\u0301", "?", "…"]),
    st.text(alphabet="abcdefghij", min_size=1600, max_size=4000),  # longer than a message
)
bodies = st.one_of(
    st.text(max_size=3000),
    st.lists(words, max_size=400).map(" ".join),
    st.lists(words, max_size=60).map("\n".join),
    st.text(alphabet="xyz😀", min_size=5000, max_size=20000),  # no spaces, huge
)
names = st.one_of(st.none(), st.text(max_size=80))
fast = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _assert_ordered_slices(text: str, parts: tuple[str, ...]) -> None:
    """The documented invariant: in-order slices, only whitespace consumed between."""
    pos = 0
    for part in parts:
        found = text.index(part, pos)
        assert text[pos:found].strip() == ""
        pos = found + len(part)
    assert text[pos:].strip() == ""
    assert _WS.sub("", "".join(parts)) == _WS.sub("", text)


@fast
@given(body=bodies, name=names)
def test_whatsapp_parts_respect_the_hard_limit_and_rejoin(body: str, name: str | None) -> None:
    reply = format_for_channel(body, Channel.WHATSAPP, ticket_number=TICKET, customer_name=name)
    full = render_for_channel(body, Channel.WHATSAPP, ticket_number=TICKET, customer_name=name)
    assert reply.parts
    assert all(0 < len(p) <= 1600 for p in reply.parts)
    assert all(p == p.strip() for p in reply.parts)
    _assert_ordered_slices(full, reply.parts)
    assert reply.parts[-1].endswith(f"Ticket {TICKET}")


@fast
@given(text=st.one_of(bodies, st.text(max_size=500)), limit=st.integers(1, 2000))
def test_split_message_keeps_every_character_in_order(text: str, limit: int) -> None:
    parts = split_message(text, limit)
    assert all(0 < len(p) <= limit for p in parts)
    _assert_ordered_slices(text, parts)


@fast
@given(body=bodies, name=names)
def test_email_stays_within_500_words(body: str, name: str | None) -> None:
    text = format_for_channel(body, Channel.EMAIL, ticket_number=TICKET, customer_name=name).text
    assert count_words(text) <= 500
    assert text.endswith(f"Customer Support\nTicket {TICKET}")


@fast
@given(body=bodies, name=names)
def test_web_form_stays_within_300_words_and_names_the_ticket(body: str, name: str | None) -> None:
    reply = format_for_channel(body, Channel.WEB_FORM, ticket_number=TICKET, customer_name=name)
    assert count_words(reply.text) <= 300
    assert TICKET in reply.text
    assert len(reply.parts) == 1


@fast
@given(body=st.text(), channel=st.sampled_from(list(Channel)))
def test_format_for_channel_never_raises(body: str, channel: Channel) -> None:
    reply = format_for_channel(body, channel, ticket_number=TICKET)
    assert reply.channel is channel
    assert all(p for p in reply.parts)
