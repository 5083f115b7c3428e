"""The Gmail API client and sender against googleapiclient's HttpMockSequence: the
requests made, replies threaded, and Gmail's errors as retryable or permanent FteErrors."""

from __future__ import annotations

import base64
import json
from email import message_from_bytes, policy
from email.message import EmailMessage
from urllib.parse import parse_qs, urlparse

import pytest

from adapters.channels.gmail.errors import GmailError, GmailSendError
from adapters.channels.gmail.sender import GmailSender, reply_subject
from fte_core.errors import DeliveryError, DeliveryRejected
from fte_core.models import Channel, DeliveryStatus, Reply
from fte_core.ports import DeliveryTarget
from tests import gmail_payloads as p

REPLY = Reply(channel=Channel.EMAIL, parts=("Dear Ana,\n\nGo to Settings > Export.\n\nTKT-000001",))
TARGET = DeliveryTarget(
    channel=Channel.EMAIL,
    address="ana@example.com",
    subject="Re: How do I export my projects to CSV?",
    thread_ref="18c2f0a1b2c3d4e0",
    in_reply_to="18c2f0a1b2c3d4e5",
)
METADATA = json.dumps(
    {
        "id": "18c2f0a1b2c3d4e5",
        "threadId": "18c2f0a1b2c3d4e0",
        "payload": {
            "headers": [
                {"name": "Subject", "value": "Re: How do I export my projects to CSV?"},
                {"name": "Message-ID", "value": "<CAF3x9Zk2=def456@mail.gmail.com>"},
                {
                    "name": "References",
                    "value": "<CAF3x9Zk1=abc123@mail.gmail.com> <reply-1@tasklane.example>",
                },
            ]
        },
    }
)


def sent_message(body: str) -> tuple[EmailMessage, dict[str, str]]:
    request = json.loads(body)
    raw = base64.urlsafe_b64decode(request["raw"])
    parsed = message_from_bytes(raw, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed, request


async def test_reply_goes_into_the_customers_thread() -> None:
    client, http = p.mock_client(
        [p.ok(METADATA), p.ok('{"id": "18c2f9", "threadId": "18c2f0a1b2c3d4e0"}')]
    )
    result = await GmailSender(client, from_name="Tasklane Support").send(REPLY, TARGET)
    assert result.provider_message_ids == ("18c2f9",)
    assert result.status is DeliveryStatus.SENT
    (lookup, _, _, _), (send_uri, method, body, _) = http.request_sequence
    query = parse_qs(urlparse(lookup).query)
    assert query["format"] == ["metadata"]
    assert set(query["metadataHeaders"]) == {"Message-ID", "References", "Subject"}
    assert method == "POST"
    assert send_uri.endswith("/users/me/messages/send?alt=json")
    message, request = sent_message(body)
    assert request["threadId"] == "18c2f0a1b2c3d4e0"
    assert message["Subject"] == "Re: How do I export my projects to CSV?"
    assert message["In-Reply-To"] == "<CAF3x9Zk2=def456@mail.gmail.com>"
    assert message["References"] == (
        "<CAF3x9Zk1=abc123@mail.gmail.com> <reply-1@tasklane.example>"
        " <CAF3x9Zk2=def456@mail.gmail.com>"
    )
    assert message["From"] == "Tasklane Support <support@tasklane.example>"
    assert message["To"] == "ana@example.com"
    assert message.get_content().replace("\r\n", "\n") == REPLY.parts[0] + "\n"


async def test_reply_without_a_gmail_thread_starts_one() -> None:
    client, http = p.mock_client([p.ok('{"id": "s2", "threadId": "new"}')])
    target = DeliveryTarget(channel=Channel.EMAIL, address="ana@example.com", subject="Refund?")
    await GmailSender(client).send(REPLY, target)
    ((_, _, body, _),) = http.request_sequence  # no lookup of an original
    message, request = sent_message(body)
    assert "threadId" not in request
    assert message["Subject"] == "Re: Refund?"
    assert message["In-Reply-To"] is None


async def test_original_gone_still_replies_in_the_thread() -> None:
    client, http = p.mock_client([p.error(404, "notFound"), p.ok('{"id": "s3"}')])
    await GmailSender(client).send(REPLY, TARGET)
    message, request = sent_message(http.request_sequence[1][2])
    assert request["threadId"] == TARGET.thread_ref
    assert message["Subject"] == "Re: How do I export my projects to CSV?"


@pytest.mark.parametrize(
    ("status", "retryable"), [(429, True), (503, True), (400, False), (403, False)]
)
async def test_send_errors_are_delivery_errors_retryable_or_permanent(
    status: int, retryable: bool
) -> None:
    client, _ = p.mock_client([p.ok(METADATA), p.error(status, "failed")])
    with pytest.raises(GmailSendError) as caught:
        await GmailSender(client).send(REPLY, TARGET)
    assert isinstance(caught.value, DeliveryError)
    assert (caught.value.status, caught.value.retryable) == (status, retryable)
    # a refusal for good is never retried: the outbound worker hands the ticket over
    assert isinstance(caught.value, DeliveryRejected) is (not retryable)


async def test_an_address_with_a_header_injection_is_refused_unsent() -> None:
    client, http = p.mock_client([])
    target = DeliveryTarget(channel=Channel.EMAIL, address="ana@example.com\r\nBcc: all@x.example")
    with pytest.raises(DeliveryRejected) as caught:
        await GmailSender(client).send(REPLY, target)
    assert caught.value.code == "gmail-compose"
    assert http.request_sequence == []


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Export", "Re: Export"),
        ("Re: Export", "Re: Export"),
        ("RE: Export", "RE: Export"),
        ("AW: Export", "AW: Export"),
        ("Re[2]: Export", "Re[2]: Export"),
        ("  Export\r\n  question ", "Re: Export question"),
        (None, "Re: Your support request"),
    ],
)
def test_reply_subject(subject: str | None, expected: str) -> None:
    assert reply_subject(subject) == expected


async def test_history_reads_every_page_in_order_without_duplicates() -> None:
    client, http = p.mock_client(
        [
            p.ok(p.history_json([("m1", "t1"), ("m2", "t2")], 1005, next_page="page-2")),
            p.ok(p.history_json([("m2", "t2"), ("m3", "t1")], 1010)),
        ]
    )
    history = await client.history(1000)
    assert history.message_ids == ("m1", "m2", "m3")
    assert history.history_id == 1010
    second = parse_qs(urlparse(http.request_sequence[1][0]).query)
    assert second["pageToken"] == ["page-2"]
    assert second["startHistoryId"] == ["1000"]
    assert second["labelId"] == ["INBOX"]


async def test_a_deleted_message_is_none_and_other_errors_raise() -> None:
    client, _ = p.mock_client([p.error(404, "notFound"), p.error(500, "backendError")])
    assert await client.message("gone") is None
    with pytest.raises(GmailError) as caught:
        await client.message("m1")
    assert caught.value.retryable
    assert caught.value.status == 500


async def test_an_unexpected_response_is_a_permanent_error() -> None:
    client, _ = p.mock_client([p.ok('{"historyId": "not a number"}')])
    with pytest.raises(GmailError) as caught:
        await client.history(1)
    assert not caught.value.retryable


async def test_watch_asks_for_the_label_on_the_topic() -> None:
    client, http = p.mock_client([p.ok('{"historyId": "777", "expiration": "1795600000000"}')])
    watch = await client.watch("projects/tasklane-prod/topics/gmail", ["INBOX"])
    assert (watch.history_id, watch.expiration) == (777, 1_795_600_000_000)
    assert json.loads(http.request_sequence[0][2]) == {
        "topicName": "projects/tasklane-prod/topics/gmail",
        "labelIds": ["INBOX"],
        "labelFilterBehavior": "include",
    }
