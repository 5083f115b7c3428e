"""The worker's commits, both stores alike: its hold on a message is taken in the turn's
transaction (open_turn(claim=...)); a reply's events and the ticket changes the rules
made on the way are stored with the reply, only when it is new."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import msgspec
import pytest

from fte_core import events
from fte_core.identity import identifiers_for
from fte_core.models import Channel, InboundMessage, Priority, Reply, TicketStatus
from fte_core.ports import CrmStore, OutboundDraft, Turn
from fte_core.testing.store import InMemoryStore
from tests.integration.test_crm_contract import DAY, T0, inbound, record

LEASE = timedelta(minutes=2)
Outbox = Callable[[], Awaitable[list[tuple[str, str, bytes]]]]


async def take(
    store: CrmStore, message: InboundMessage, now: datetime, claim: timedelta | None = LEASE
) -> Turn:
    return await store.open_turn(
        message, identifiers_for(message), None, now, timedelta(hours=24), claim=claim
    )


def draft(turn: Turn, *queued: tuple[str, events.Event], announce: bool = False) -> OutboundDraft:
    return OutboundDraft(
        conversation_id=turn.thread.conversation.id,
        channel=turn.inbound.channel,
        in_reply_to=turn.inbound.id,
        reply=Reply(channel=turn.inbound.channel, parts=("Go to Settings.",)),
        record=record(turn.inbound.id),
        announce=announce,
        events=queued,
    )


def metrics(number: str) -> events.MetricsEvent:
    return events.MetricsEvent(
        channel=Channel.EMAIL,
        ticket_number=number,
        action="answer",
        escalation_reason=None,
        sentiment=0.5,
        latency_ms=12.5,
        prompt_tokens=0,
        completion_tokens=0,
        cost_usd=0.0,
        responder="instant",
        at=T0,
    )


@pytest.fixture
def outbox(store: CrmStore, request: pytest.FixtureRequest) -> Outbox:
    """What the store has queued so far, oldest first: (topic, key, payload)."""
    if isinstance(store, InMemoryStore):
        memory = store

        async def from_memory() -> list[tuple[str, str, bytes]]:
            return list(memory.outbox)

        return from_memory
    pool: Any = request.getfixturevalue("pg_pool")

    async def from_table() -> list[tuple[str, str, bytes]]:
        async with pool.connection() as conn:
            cursor = await conn.execute("SELECT topic, key, payload FROM outbox ORDER BY id")
            return [(row[0], row[1], bytes(row[2])) for row in await cursor.fetchall()]

    return from_table


async def test_the_turn_holds_the_message_until_its_lease_runs_out(store: CrmStore) -> None:
    message = inbound("w-1", sender_email="ana@example.com")
    first = await take(store, message, T0)
    assert (first.created, first.claimed) == (True, True)
    held = await take(store, message, T0 + timedelta(minutes=1))
    assert (held.created, held.claimed) == (False, False)  # the first worker holds it
    assert not (await take(store, message, T0 + timedelta(minutes=5), claim=None)).claimed
    again = await take(store, message, T0 + timedelta(minutes=3))
    assert again.claimed  # the first holder died: its lease ran out
    assert again.inbound.id == first.inbound.id


async def test_a_processed_message_is_never_held_again(store: CrmStore) -> None:
    message = inbound("w-2", sender_email="ana@example.com")
    turn = await take(store, message, T0)
    assert (await store.save_outbound(draft(turn)))[1]
    later = await take(store, message, T0 + timedelta(hours=1))
    assert not later.claimed
    assert later.inbound.processed_at is not None


async def test_of_concurrent_copies_exactly_one_holds_the_message(store: CrmStore) -> None:
    message = inbound("w-3", sender_email="ana@example.com")
    turns = await asyncio.gather(*(take(store, message, T0) for _ in range(6)))
    assert sum(t.claimed for t in turns) == 1
    assert sum(t.created for t in turns) == 1
    assert len({t.inbound.id for t in turns}) == 1


async def test_a_new_reply_queues_its_events_in_order(store: CrmStore, outbox: Outbox) -> None:
    turn = await take(store, inbound("w-4", sender_email="ana@example.com"), T0)
    event = metrics(turn.thread.ticket.number)
    stored, new = await store.save_outbound(draft(turn, (events.METRICS, event), announce=True))
    assert new
    customer = turn.resolution.customer.id
    queued = [(topic, key) for topic, key, _ in await outbox()]
    assert queued[-2:] == [(events.OUTBOUND, customer), (events.METRICS, customer)]
    payloads = [events.decode(payload) for _, _, payload in (await outbox())[-2:]]
    assert payloads == [
        events.OutboundEvent(message_id=stored.id, channel=Channel.EMAIL),
        event,
    ]


async def test_a_reply_stored_already_queues_nothing_more(store: CrmStore, outbox: Outbox) -> None:
    turn = await take(store, inbound("w-5", sender_email="ana@example.com"), T0)
    event = metrics(turn.thread.ticket.number)
    assert (await store.save_outbound(draft(turn, (events.METRICS, event))))[1]
    before = await outbox()
    assert [topic for topic, _, _ in before].count(events.METRICS) == 1
    _, new = await store.save_outbound(draft(turn, (events.METRICS, event), announce=True))
    assert not new
    assert await outbox() == before


async def test_a_new_reply_stores_the_rules_tags_and_priority(store: CrmStore) -> None:
    turn = await take(store, inbound("w-6", sender_email="ana@example.com"), T0)
    number = turn.thread.ticket.number
    await store.update_ticket(number, tags=("mobile",))
    changes = msgspec.structs.replace(
        draft(turn), tags=("billing", "api"), priority=Priority.HIGH, ticket_status=None
    )
    assert (await store.save_outbound(changes))[1]
    ticket = await store.get_ticket(number)
    assert ticket is not None
    assert (ticket.tags, ticket.priority) == (("api", "billing", "mobile"), Priority.HIGH)
    assert ticket.status is TicketStatus.OPEN  # no move asked: none made


async def test_the_ticket_moves_and_is_tagged_in_one_change(store: CrmStore) -> None:
    turn = await take(store, inbound("w-7", sender_email="ana@example.com"), T0)
    changes = msgspec.structs.replace(
        draft(turn), tags=("sso",), ticket_status=TicketStatus.PENDING
    )
    assert (await store.save_outbound(changes))[1]
    ticket = await store.get_ticket(turn.thread.ticket.number)
    conversation = await store.get_conversation(turn.thread.conversation.id)
    assert ticket is not None
    assert conversation is not None
    assert (ticket.status, ticket.tags) == (TicketStatus.PENDING, ("sso",))
    assert conversation.status is TicketStatus.PENDING


async def test_a_reply_stored_already_changes_the_ticket_no_more(store: CrmStore) -> None:
    turn = await take(store, inbound("w-8", sender_email="ana@example.com"), T0)
    assert (await store.save_outbound(draft(turn)))[1]
    late = msgspec.structs.replace(draft(turn), tags=("api",), priority=Priority.CRITICAL)
    assert not (await store.save_outbound(late))[1]
    ticket = await store.get_ticket(turn.thread.ticket.number)
    assert ticket is not None
    assert (ticket.tags, ticket.priority) == ((), Priority.NORMAL)


async def test_a_hand_over_reply_takes_the_acknowledgement_slot(store: CrmStore) -> None:
    turn = await take(store, inbound("w-9", sender_email="ana@example.com"), T0)
    number = turn.thread.ticket.number
    at = T0 + timedelta(minutes=1)
    hand_over = msgspec.structs.replace(draft(turn), acknowledged_at=at)
    assert (await store.save_outbound(hand_over))[1]
    ticket = await store.get_ticket(number)
    assert ticket is not None
    assert ticket.acknowledged_at == at
    # the period runs from the hand-over: no second acknowledgement within it
    assert not await store.claim_acknowledgement(number, at + timedelta(hours=1), DAY)
    assert await store.claim_acknowledgement(number, at + timedelta(days=2), DAY)
