"""A mailbox's sync after a push, over the in-memory store and an Agent: each new message
stored and queued once, the history id advanced only after, a crash re-reading."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from adapters.channels.gmail.api import GmailClient
from adapters.channels.gmail.envelope import PushNotification
from adapters.channels.gmail.errors import GmailError
from adapters.channels.gmail.sync import MailboxSync
from fte_core.context import load_context
from fte_core.models import Channel, Direction, StoredMessage
from fte_core.offline import OfflineResponder
from fte_core.pipeline import Agent
from fte_core.policy import PolicyEngine, load_rules
from fte_core.testing.bus import InMemoryBus
from fte_core.testing.knowledge import InMemoryKnowledgeBase
from fte_core.testing.mailboxes import InMemoryMailboxes
from fte_core.testing.store import InMemoryStore
from tests import gmail_payloads as p

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def policy() -> PolicyEngine:
    return PolicyEngine(load_rules(ROOT / "rules"))


class Mailbox:
    """The agent's intake over in-memory fakes, and the sync under test."""

    def __init__(self, policy: PolicyEngine) -> None:
        self.store = InMemoryStore()
        self.queued: list[str] = []
        self.store.on_announce = self._announced
        self.state = InMemoryMailboxes()
        self.agent = Agent(
            policy=policy,
            context=load_context(ROOT / "context"),
            store=self.store,
            knowledge=InMemoryKnowledgeBase(),
            responder=OfflineResponder(),
            bus=InMemoryBus(),
        )

    async def _announced(self, topic: str, key: str, event: object) -> None:
        self.queued.append(key)

    def sync(self, client: GmailClient) -> MailboxSync:
        return MailboxSync(client, self.state, self.agent.submit)

    async def inbound(self) -> list[StoredMessage]:
        every = await self.store.messages_since(datetime(2000, 1, 1, tzinfo=UTC))
        return [m for m in every if m.direction is Direction.INBOUND]


def push(history_id: int, mailbox: str = p.MAILBOX) -> PushNotification:
    return PushNotification(mailbox=mailbox, history_id=history_id)


@pytest.fixture
async def box(policy: PolicyEngine) -> Mailbox:
    mailbox = Mailbox(policy)
    await mailbox.state.advance(p.MAILBOX, 1000)
    return mailbox


async def test_new_mail_is_stored_once_and_robots_are_skipped(box: Mailbox) -> None:
    client, http = p.mock_client(
        [
            p.ok(p.history_json([("m1", "t1"), ("m2", "t1"), ("m3", "t3")], 1010)),
            p.ok(p.message_json("m1", p.MULTIPART_ALTERNATIVE, thread_id="t1")),
            p.ok(p.message_json("m2", p.AUTO_REPLY, thread_id="t1")),
            p.ok(p.message_json("m3", p.OWN_SENT, thread_id="t3", labels=("SENT",))),
        ]
    )
    report = await box.sync(client).on_push(push(1010))
    assert report.stored == ("m1",)
    assert [s.message_id for s in report.skipped] == ["m2", "m3"]
    assert await box.state.watermark(p.MAILBOX) == 1010
    (stored,) = await box.inbound()
    assert (stored.channel, stored.provider_message_id) == (Channel.EMAIL, "m1")
    assert len(box.queued) == 1  # queued for a worker with the message, once
    # Pub/Sub delivers the same push again: nothing is asked of Gmail, nothing stored
    again = await box.sync(client).on_push(push(1010))
    assert again.note == "nothing new"
    assert len(http.request_sequence) == 4
    assert len(await box.inbound()) == 1


async def test_a_crash_before_storing_rereads_and_skips_nothing(box: Mailbox) -> None:
    first, _ = p.mock_client(
        [
            p.ok(p.history_json([("m1", "t1"), ("m2", "t2")], 1010)),
            p.ok(p.message_json("m1", p.MULTIPART_ALTERNATIVE, thread_id="t1")),
            p.error(503, "backendError"),  # m2 cannot be fetched: the sync stops here
        ]
    )
    with pytest.raises(GmailError):
        await box.sync(first).on_push(push(1010))
    assert await box.state.watermark(p.MAILBOX) == 1000  # not advanced past m2
    second, _ = p.mock_client(
        [
            p.ok(p.history_json([("m1", "t1"), ("m2", "t2"), ("m4", "t4")], 1020)),
            p.ok(p.message_json("m1", p.MULTIPART_ALTERNATIVE, thread_id="t1")),
            p.ok(p.message_json("m2", p.LATIN1, thread_id="t2")),
            p.ok(p.message_json("m4", p.HTML_ONLY, thread_id="t4")),
        ]
    )
    report = await box.sync(second).on_push(push(1020))
    assert report.stored == ("m1", "m2", "m4")
    assert sorted(m.provider_message_id or "" for m in await box.inbound()) == ["m1", "m2", "m4"]
    assert len(box.queued) == 3  # m1 was queued once, not again on the re-read
    assert await box.state.watermark(p.MAILBOX) == 1020


async def test_history_too_old_resyncs_the_recent_inbox(box: Mailbox) -> None:
    client, http = p.mock_client(
        [
            p.error(404, "notFound"),
            p.ok('{"emailAddress": "support@tasklane.example", "historyId": "5000"}'),
            p.ok('{"messages": [{"id": "m9", "threadId": "t9"}], "resultSizeEstimate": 1}'),
            p.ok(p.message_json("m9", p.ATTACHMENT, thread_id="t9")),
        ]
    )
    report = await box.sync(client).on_push(push(5001))
    assert report.resynced
    assert report.stored == ("m9",)
    assert await box.state.watermark(p.MAILBOX) == 5000
    assert "q=newer_than%3A7d" in http.request_sequence[2][0]


async def test_first_push_without_a_watermark_starts_from_it(policy: PolicyEngine) -> None:
    fresh = Mailbox(policy)
    client, http = p.mock_client([])
    report = await fresh.sync(client).on_push(push(321))
    assert report.note == "started"
    assert await fresh.state.watermark(p.MAILBOX) == 321
    assert http.request_sequence == []


async def test_a_push_for_another_mailbox_is_ignored(box: Mailbox) -> None:
    client, http = p.mock_client([])
    report = await box.sync(client).on_push(push(2000, mailbox="someone@else.example"))
    assert report.note == "not our mailbox"
    assert await box.state.watermark(p.MAILBOX) == 1000
    assert http.request_sequence == []


async def test_an_unreadable_message_is_passed_over_and_the_rest_stored(box: Mailbox) -> None:
    client, _ = p.mock_client(
        [
            p.ok(p.history_json([("bad", "t0"), ("m1", "t1")], 1002)),
            p.ok(p.message_json("bad", b"Subject: no sender at all\r\n\r\nhello\r\n")),
            p.ok(p.message_json("m1", p.MULTIPART_ALTERNATIVE, thread_id="t1")),
        ]
    )
    report = await box.sync(client).on_push(push(1002))
    assert report.stored == ("m1",)
    assert report.skipped[0].reason.startswith("unreadable: from:")
