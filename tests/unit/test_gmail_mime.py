"""Gmail messages as the agent receives them: realistic payloads parsed, robots and our
own mail recognised, senders proven only by the provider's SPF/DKIM verdict."""

from __future__ import annotations

import pytest

from adapters.channels.gmail.api import GmailMessage
from adapters.channels.gmail.auth_results import aligned, sender_verified
from adapters.channels.gmail.htmltext import html_to_text
from adapters.channels.gmail.inbound import Skipped, to_inbound
from adapters.channels.gmail.mime import MAX_TEXT_CHARS, parse_email
from fte_core.errors import ValidationError
from fte_core.inbound import strip_quoted_history
from fte_core.models import Channel, InboundMessage, Verification
from tests import gmail_payloads as p


def gmail(raw: bytes, *, labels: tuple[str, ...] = ("INBOX", "UNREAD")) -> GmailMessage:
    return GmailMessage(
        id="18c2f0a1b2c3d4e5",
        thread_id="18c2f0a1b2c3d4e0",
        label_ids=labels,
        internal_date="1795000000000",
        raw=p.b64url(raw),
    )


def inbound(raw: bytes, **kw: tuple[str, ...]) -> InboundMessage:
    result = to_inbound(gmail(raw, **kw), p.MAILBOX)
    assert isinstance(result, InboundMessage), result
    return result


def test_multipart_alternative_prefers_the_plain_part() -> None:
    message = inbound(p.MULTIPART_ALTERNATIVE)
    assert message.channel is Channel.EMAIL
    assert message.provider_message_id == "18c2f0a1b2c3d4e5"
    assert message.thread_ref == "18c2f0a1b2c3d4e0"
    assert message.sender_email == "ana@example.com"
    assert message.sender_name == "Ana Ruiz"
    assert message.subject == "How do I export my projects to CSV?"
    assert message.text == (
        "Hi,\n\nHow do I export my projects to CSV? I need it for a report.\n\nThanks,\nAna"
    )
    assert "<b>" not in message.text
    assert message.verified_by is Verification.EMAIL_AUTH
    assert message.received_at.timestamp() == 1_795_000_000  # Gmail's internalDate


def test_html_only_is_converted_to_text() -> None:
    message = inbound(p.HTML_ONLY)
    assert message.sender_name == "李伟"
    assert message.text == (
        'Hello team,\nWhen I open Billing I get "Error 500" & nothing loads.\n'
        "- Chrome 120\n- Windows 11\nRegards,\nLi"
    )
    assert "track()" not in message.text
    assert "margin" not in message.text


def test_reply_keeps_quoted_history_for_the_rules_and_strips_it_for_the_model() -> None:
    message = inbound(p.REPLY_WITH_HISTORY)
    assert "> Go to Settings > Export and choose CSV." in message.text
    assert "wrote:" in message.text
    assert strip_quoted_history(message.text) == (
        "Thanks, but the export button is greyed out for me."
    )


def test_iso_8859_1_body_subject_and_name_are_decoded() -> None:
    message = inbound(p.LATIN1)
    assert (
        message.text == "Bonjour, je n'arrive pas à exporter mes données. Merci d'avance, François"
    )
    assert message.subject == "Problème d'export"
    assert message.sender_name == "François Lévesque"


def test_attachments_are_noted_not_stored() -> None:
    message = inbound(p.ATTACHMENT)
    (attachment,) = message.attachments
    assert (attachment.filename, attachment.content_type) == (
        "invoice-2026-11.pdf",
        "application/pdf",
    )
    assert attachment.size == 2064
    assert message.text == (
        "Please see the attached invoice, the total looks wrong.\n\n"
        "[attached: invoice-2026-11.pdf (application/pdf, 2 KB)]"
    )


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (p.AUTO_REPLY, "automated: Auto-Submitted: auto-replied"),
        (p.BULK, "automated: Precedence: bulk"),
        (p.BOUNCE, "automated: sender mailer-daemon"),
        (p.OWN_SENT, "sent from our own address"),
    ],
)
def test_robots_and_our_own_mail_are_skipped(raw: bytes, reason: str) -> None:
    result = to_inbound(gmail(raw), p.MAILBOX)
    assert result == Skipped(message_id="18c2f0a1b2c3d4e5", reason=reason)


def test_sent_label_is_our_own_message_whatever_the_from() -> None:
    result = to_inbound(gmail(p.MULTIPART_ALTERNATIVE, labels=("SENT",)), p.MAILBOX)
    assert result == Skipped(message_id="18c2f0a1b2c3d4e5", reason="our own message (SENT)")


def test_spoofed_from_with_failing_dkim_is_taken_in_unverified() -> None:
    message = inbound(p.SPOOFED)
    assert message.sender_email == "ceo@bigcorp.com"
    assert message.verified_by is None  # a claim only: it sees no earlier conversation


def test_authentication_results_of_another_server_do_not_count() -> None:
    header = (
        "mail.attacker.example; dkim=pass header.d=example.com; spf=pass smtp.mailfrom=example.com"
    )
    assert not sender_verified([header], "ana@example.com", "mx.google.com")
    mine = "mx.google.com; spf=pass smtp.mailfrom=bounce@mail.example.com"
    assert sender_verified([mine], "ana@example.com", "mx.google.com")  # relaxed alignment
    dkim_other = (
        "mx.google.com; dkim=pass header.d=sendgrid.net; spf=pass smtp.mailfrom=sendgrid.net"
    )
    assert not sender_verified([dkim_other], "ana@example.com", "mx.google.com")


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("example.com", "example.com", True),
        ("mail.example.com", "example.com", True),
        ("example.com", "com", False),
        ("badexample.com", "example.com", False),
        ("", "example.com", False),
    ],
)
def test_alignment(a: str, b: str, expected: bool) -> None:
    assert aligned(a, b) is expected


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b"Subject: no sender\r\n\r\nhello\r\n", "from"),
        (b"From: undisclosed-recipients:;\r\n\r\nhello\r\n", "from"),
        (b"From: Ana <not-an-address>\r\n\r\nhello\r\n", "from"),
    ],
)
def test_no_usable_sender_is_a_validation_error(raw: bytes, field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_email(raw)
    assert caught.value.field == field


def test_unknown_charset_decodes_with_replacement() -> None:
    raw = (
        b"From: a@b.example\r\nContent-Type: text/plain; charset=x-unknown-42\r\n\r\n"
        b"caf\xc3\xa9 \xff\r\n"
    )
    assert parse_email(raw).text == "café \ufffd"


def test_huge_body_is_cut_and_says_so() -> None:
    raw = b"From: a@b.example\r\nContent-Type: text/plain\r\n\r\n" + b"word " * 40_000
    text = parse_email(raw).text
    assert len(text) <= MAX_TEXT_CHARS
    assert text.endswith("[message truncated]")


def test_empty_body_is_no_text() -> None:
    message = inbound(b"From: Ana <ana@example.com>\r\nSubject: hi\r\n\r\n")
    assert message.text == "(no text)"


def test_raw_that_is_not_base64url_is_a_validation_error() -> None:
    bad = GmailMessage(id="x", thread_id="t", raw="***")
    with pytest.raises(ValidationError) as caught:
        to_inbound(bad, p.MAILBOX)
    assert caught.value.field == "raw"


def test_html_to_text_handles_broken_markup() -> None:
    assert html_to_text("<p>one<div>two</p></span><br/>three &amp; <i>four") == (
        "one\ntwo\n\nthree & four"  # the <br/> after a closed block: an empty line
    )
    assert html_to_text("<blockquote>quoted<blockquote>deeper</blockquote></blockquote>") == (
        "> quoted\n> > deeper"
    )
