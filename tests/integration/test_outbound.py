"""Outbound delivery (fte_core.delivery) over both stores, through the real TwilioSender
against a local fake Twilio: parts in order, each provider id recorded before the reply is
marked sent, retries that never re-send an accepted part, refusals handed to a person,
status reports."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from adapters.channels.whatsapp.sender import TwilioSender
from fte_core.delivery import DELIVERY_FAILED, Outbound
from fte_core.errors import DeliveryError
from fte_core.identity import identifiers_for
from fte_core.models import (
    Channel,
    DeliveryStatus,
    InboundMessage,
    Owner,
    StoredMessage,
    TicketStatus,
    Verification,
)
from fte_core.ports import ChannelSender, CrmStore, DeliveryLedger, DeliveryState
from fte_core.testing.bus import InMemoryBus
from fte_core.testing.deliveries import InMemoryDeliveries
from fte_core.tools import DELIVERY_LEASE
from tests.fake_twilio import FakeTwilio, Scripted, fake_twilio

ACCOUNT = "AC" + "2" * 32
PHONE = "+14155550199"
# three WhatsApp parts (1,600 characters each at most), each sentence numbered
LONG = " ".join(f"Sentence number {i} of a long answer from a person." for i in range(90))


@pytest.fixture
def twilio() -> Iterator[FakeTwilio]:
    with fake_twilio() as fake:
        yield fake


@pytest.fixture
def ledger(store: CrmStore, request: pytest.FixtureRequest) -> DeliveryLedger:
    from fte_core.testing.store import InMemoryStore

    if isinstance(store, InMemoryStore):
        return InMemoryDeliveries(store)
    from adapters.storage.postgres.deliveries import PostgresDeliveries

    return PostgresDeliveries(request.getfixturevalue("pg_pool"))


def outbound_for(
    store: CrmStore,
    ledger: DeliveryLedger,
    fake: FakeTwilio,
    *,
    clock_offset: timedelta = timedelta(0),
) -> tuple[Outbound, InMemoryBus]:
    sender: ChannelSender = TwilioSender.connect(
        ACCOUNT, "t" * 32, "+14155238886", api_base=fake.base_url
    )
    bus = InMemoryBus()
    outbound = Outbound(
        store=store,
        ledger=ledger,
        senders={Channel.WHATSAPP: sender},
        bus=bus,
        clock=lambda: datetime.now(UTC) + clock_offset,
    )
    return outbound, bus


async def human_reply(store: CrmStore, text: str, channel: Channel = Channel.WHATSAPP) -> str:
    message = InboundMessage(
        channel=channel,
        provider_message_id="SM" + "c" * 32,
        text="I need help with my invoice",
        received_at=datetime.now(UTC),
        sender_phone=PHONE if channel is Channel.WHATSAPP else None,
        sender_email=None if channel is Channel.WHATSAPP else "ana@example.com",
        verified_by=Verification.PROVIDER_SIGNED,
    )
    turn = await store.open_turn(
        message, identifiers_for(message), "Ana", datetime.now(UTC), timedelta(hours=24)
    )
    stored = await store.save_human_reply(turn.thread.ticket.number, text, "Bea")
    return stored.id


async def message(store: CrmStore, message_id: str) -> StoredMessage:
    found = await store.get_message(message_id)
    assert found is not None
    return found


async def state(ledger: DeliveryLedger, message_id: str) -> DeliveryState:
    found = await ledger.state(message_id)
    assert found is not None
    return found


async def test_parts_go_out_in_order_each_id_recorded(
    store: CrmStore, ledger: DeliveryLedger, twilio: FakeTwilio
) -> None:
    reply_id = await human_reply(store, LONG)
    outbound, _ = outbound_for(store, ledger, twilio)
    assert await outbound.deliver(reply_id) is DeliveryStatus.SENT
    bodies = twilio.bodies()
    assert len(bodies) == 3
    assert all(len(b) <= 1600 for b in bodies)
    assert " ".join(bodies) == LONG
    recorded = await state(ledger, reply_id)
    assert [p.provider_message_id for p in recorded.parts] == [a["Sid"] for a in twilio.accepted]
    stored = await message(store, reply_id)
    assert stored.provider_message_id == twilio.accepted[0]["Sid"]
    # a redelivered event sends nothing more
    assert await outbound.deliver(reply_id) is DeliveryStatus.SENT
    assert len(twilio.requests) == 3


async def test_429_then_201_retries_without_duplicates(
    store: CrmStore, ledger: DeliveryLedger, twilio: FakeTwilio
) -> None:
    reply_id = await human_reply(store, LONG)
    outbound, _ = outbound_for(store, ledger, twilio)
    twilio.script += [Scripted(201), Scripted(429, 20429, "Too Many Requests")]
    with pytest.raises(DeliveryError):
        await outbound.deliver(reply_id)
    failed = await state(ledger, reply_id)
    assert failed.status is DeliveryStatus.FAILED
    assert failed.error is not None
    assert "429" in failed.error
    assert len(failed.parts) == 1  # the first part went out and is recorded
    assert await outbound.deliver(reply_id) is DeliveryStatus.SENT
    assert " ".join(twilio.bodies()) == LONG  # each part exactly once, in order
    assert (await state(ledger, reply_id)).error is None


async def test_63016_is_recorded_and_the_ticket_goes_to_a_person(
    store: CrmStore, ledger: DeliveryLedger, twilio: FakeTwilio
) -> None:
    reply_id = await human_reply(store, "Your invoice is fixed.")
    outbound, bus = outbound_for(store, ledger, twilio)
    twilio.script.append(Scripted(400, 63016, "Failed to send freeform message"))
    assert await outbound.deliver(reply_id) is DeliveryStatus.UNDELIVERED
    recorded = await state(ledger, reply_id)
    assert recorded.status is DeliveryStatus.UNDELIVERED
    assert recorded.error is not None
    assert "63016" in recorded.error
    stored = await message(store, reply_id)
    conversation = await store.get_conversation(stored.conversation_id)
    assert conversation is not None
    ticket = await store.get_ticket(conversation.ticket_number)
    assert ticket is not None
    assert ticket.status is TicketStatus.ESCALATED
    assert ticket.owner is Owner.HUMAN
    assert ticket.escalation_reason == DELIVERY_FAILED
    assert len(bus.on("fte.escalations")) == 1
    # never retried: a redelivered event sends nothing
    assert await outbound.deliver(reply_id) is DeliveryStatus.UNDELIVERED
    assert len(twilio.requests) == 1


async def test_the_last_attempt_gives_up_and_hands_over(
    store: CrmStore, ledger: DeliveryLedger, twilio: FakeTwilio
) -> None:
    reply_id = await human_reply(store, "Short answer.")
    outbound, bus = outbound_for(store, ledger, twilio)
    twilio.script.append(Scripted(503))
    assert await outbound.deliver(reply_id, last_attempt=True) is DeliveryStatus.UNDELIVERED
    assert len(bus.on("fte.escalations")) == 1


class _Crash(BaseException):
    """The process dies here."""


class CrashBeforeMarkingSent:
    """The real ledger, until the reply is about to be marked sent: then the process
    dies (every part was accepted by Twilio and recorded)."""

    def __init__(self, ledger: DeliveryLedger) -> None:
        self._ledger = ledger
        self.record_part = ledger.record_part
        self.state = ledger.state
        self.record_failure = ledger.record_failure
        self.part_status = ledger.part_status

    async def settle(self, message_id: str) -> DeliveryStatus:
        raise _Crash


async def test_a_crash_after_acceptance_never_resends(
    store: CrmStore, ledger: DeliveryLedger, twilio: FakeTwilio
) -> None:
    reply_id = await human_reply(store, LONG)
    dying, _ = outbound_for(store, CrashBeforeMarkingSent(ledger), twilio)  # type: ignore[arg-type]
    with pytest.raises(_Crash):
        await dying.deliver(reply_id)
    assert len(twilio.accepted) == 3
    assert (await message(store, reply_id)).delivery_status is DeliveryStatus.SENDING
    # a new worker, once the dead one's lease ran out
    later, _ = outbound_for(store, ledger, twilio, clock_offset=DELIVERY_LEASE * 2)
    assert await later.deliver(reply_id) is DeliveryStatus.SENT
    assert len(twilio.requests) == 3  # nothing sent again
    assert (await message(store, reply_id)).provider_message_id == twilio.accepted[0]["Sid"]


async def test_status_reports_move_forward_only(
    store: CrmStore, ledger: DeliveryLedger, twilio: FakeTwilio
) -> None:
    reply_id = await human_reply(store, LONG)
    outbound, _ = outbound_for(store, ledger, twilio)
    await outbound.deliver(reply_id)
    sids = [a["Sid"] for a in twilio.accepted]
    wa = Channel.WHATSAPP
    assert await outbound.report(wa, sids[0], DeliveryStatus.DELIVERED) is DeliveryStatus.SENT
    for sid in sids[1:]:
        await outbound.report(wa, sid, DeliveryStatus.DELIVERED)
    assert (await message(store, reply_id)).delivery_status is DeliveryStatus.DELIVERED
    # a late "sent" never undoes "delivered"
    assert await outbound.report(wa, sids[2], DeliveryStatus.SENT) is DeliveryStatus.DELIVERED
    for sid in sids:
        await outbound.report(wa, sid, DeliveryStatus.READ)
    assert (await message(store, reply_id)).delivery_status is DeliveryStatus.READ
    assert await outbound.report(wa, "SM" + "0" * 32, DeliveryStatus.READ) is None


async def test_a_failed_report_hands_the_ticket_over(
    store: CrmStore, ledger: DeliveryLedger, twilio: FakeTwilio
) -> None:
    reply_id = await human_reply(store, "Short answer.")
    outbound, bus = outbound_for(store, ledger, twilio)
    await outbound.deliver(reply_id)
    sid = twilio.accepted[0]["Sid"]
    status = await outbound.report(Channel.WHATSAPP, sid, DeliveryStatus.UNDELIVERED, "63016")
    assert status is DeliveryStatus.UNDELIVERED
    recorded = await state(ledger, reply_id)
    assert recorded.parts[0].error == "63016"
    assert recorded.error is not None
    assert "63016" in recorded.error
    assert len(bus.on("fte.escalations")) == 1


async def test_web_form_replies_are_delivered_on_the_status_page(
    store: CrmStore, ledger: DeliveryLedger, twilio: FakeTwilio
) -> None:
    reply_id = await human_reply(store, "Answer on the page.", Channel.WEB_FORM)
    outbound, _ = outbound_for(store, ledger, twilio)
    assert await outbound.deliver(reply_id) is DeliveryStatus.DELIVERED
    assert twilio.requests == []


async def test_an_unconfigured_channel_leaves_the_reply_queued(
    store: CrmStore, ledger: DeliveryLedger, twilio: FakeTwilio
) -> None:
    reply_id = await human_reply(store, "Hello.")
    outbound = Outbound(store=store, ledger=ledger, senders={}, bus=InMemoryBus())
    assert await outbound.deliver(reply_id) is DeliveryStatus.QUEUED
    assert (await message(store, reply_id)).delivery_status is DeliveryStatus.QUEUED
