"""The Gmail channel's parsers on any input: a valid result or a ValidationError (the
webhook's 4xx, the sync's logged skip), never another exception."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import TypeVar

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.channels.gmail.api import GmailMessage
from adapters.channels.gmail.auth_results import sender_verified
from adapters.channels.gmail.envelope import PushNotification, decode_push
from adapters.channels.gmail.htmltext import html_to_text
from adapters.channels.gmail.inbound import Skipped, to_inbound
from adapters.channels.gmail.mime import ParsedEmail, parse_email
from fte_core.errors import ValidationError
from fte_core.models import InboundMessage
from tests import gmail_payloads as p

_T = TypeVar("_T")


def attempt(parse: Callable[[], _T]) -> _T | ValidationError:
    """The parser's result, or the typed error it raised (any other exception fails)."""
    try:
        return parse()
    except ValidationError as exc:
        return exc


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
notifications = st.fixed_dictionaries(
    {},
    optional={
        "emailAddress": st.one_of(st.emails(), st.text(max_size=40), st.integers()),
        "historyId": st.one_of(st.integers(), st.text(max_size=25), st.none()),
    },
)


def _envelope(data: str, message_id: object) -> bytes:
    return json.dumps(
        {"message": {"data": data, "messageId": message_id}, "subscription": "s"}
    ).encode()


envelopes = st.one_of(
    st.binary(max_size=300),
    st.builds(lambda v: json.dumps(v).encode(), json_values),
    st.builds(
        _envelope,
        st.one_of(
            st.builds(lambda n: base64.b64encode(json.dumps(n).encode()).decode(), notifications),
            st.builds(lambda b: base64.urlsafe_b64encode(b).decode(), st.binary(max_size=80)),
            st.text(max_size=60),
        ),
        json_values,
    ),
)


@settings(max_examples=250, suppress_health_check=[HealthCheck.too_slow])
@given(envelopes)
def test_any_push_body_decodes_or_names_the_field(body: bytes) -> None:
    push = attempt(lambda: decode_push(body))
    if isinstance(push, ValidationError):
        assert push.field
        return
    assert isinstance(push, PushNotification)
    assert push.history_id > 0
    assert "@" in push.mailbox


header_names = st.sampled_from(
    [
        "From", "To", "Subject", "Date", "Message-ID", "References", "In-Reply-To",
        "Content-Type", "Content-Transfer-Encoding", "Content-Disposition", "MIME-Version",
        "Auto-Submitted", "Precedence", "Authentication-Results", "Return-Path", "X-Autoreply",
    ]
)  # fmt: skip
header_values = st.one_of(
    st.text(max_size=60).map(lambda t: t.replace("\r", " ").replace("\n", " ")),
    st.sampled_from(
        [
            "Ana <ana@example.com>",
            '"Ruiz, Ana" <ana@example.com>, bob@b.example',
            "=?ISO-8859-1?Q?Fran=E7ois?= <f@x.example>",
            "=?utf-8?B?!!!?= <@>",
            "undisclosed-recipients:;",
            "<>",
            'multipart/mixed; boundary="b"',
            "multipart/alternative; boundary=b",
            "text/plain; charset=x-unknown",
            "text/html; charset=utf-16",
            "message/rfc822",
            "base64",
            "quoted-printable",
            'attachment; filename="=?utf-8?q?a=FF?="',
            "mx.google.com; dkim=pass header.d=example.com; spf=pass smtp.mailfrom=a@example.com",
            "auto-replied",
            "bulk",
            "Mon, 99 Foo 2026 25:61:61 +9999",
        ]
    ),
)
bodies = st.one_of(
    st.binary(max_size=200),
    st.sampled_from(
        [b"--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b--", b"PGI+aGk8L2I+", b"=E9=\r\n"]
    ),
)
messages = st.one_of(
    st.binary(max_size=600),
    st.builds(
        lambda headers, body: (
            "".join(f"{k}: {v}\r\n" for k, v in headers).encode("utf-8", "surrogatepass")
            + b"\r\n"
            + body
        ),
        st.lists(st.tuples(header_names, header_values), max_size=10),
        bodies,
    ),
    st.sampled_from(
        [p.MULTIPART_ALTERNATIVE, p.HTML_ONLY, p.ATTACHMENT, p.LATIN1, p.SPOOFED]
    ).flatmap(
        lambda raw: st.integers(0, len(raw)).map(lambda cut: raw[:cut])  # truncated anywhere
    ),
)


@settings(max_examples=250, suppress_health_check=[HealthCheck.too_slow])
@given(messages)
def test_any_mime_message_parses_or_names_the_field(raw: bytes) -> None:
    parsed = attempt(lambda: parse_email(raw))
    if isinstance(parsed, ValidationError):
        assert parsed.field
        return
    assert isinstance(parsed, ParsedEmail)
    assert "@" in parsed.sender
    assert isinstance(parsed.text, str)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(messages, st.lists(st.sampled_from(["INBOX", "SENT", "DRAFT", "UNREAD"]), max_size=3))
def test_any_gmail_message_is_inbound_skipped_or_invalid(raw: bytes, labels: list[str]) -> None:
    message = GmailMessage(id="m", thread_id="t", label_ids=tuple(labels), raw=p.b64url(raw))
    result = attempt(lambda: to_inbound(message, p.MAILBOX))
    if isinstance(result, ValidationError):
        assert result.field
        return
    assert isinstance(result, InboundMessage | Skipped)
    if isinstance(result, InboundMessage):
        assert result.text  # never an empty message for the agent


@given(st.text(max_size=500))
def test_any_html_becomes_text(html: str) -> None:
    assert isinstance(html_to_text(html), str)


@given(st.text(max_size=200), st.text(max_size=40))
def test_any_authentication_results_header_is_a_yes_or_no(header: str, sender: str) -> None:
    assert sender_verified([header], sender, "mx.google.com") in (True, False)
