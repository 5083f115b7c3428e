"""The web form's fast intake (`receive`: one statement, the ticket number reserved) and
the worker taking the receipt in (`open_turn` with `reserved_ticket`): both stores agree."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import pytest
from psycopg_pool import AsyncConnectionPool

from fte_core import events
from fte_core.errors import ValidationError
from fte_core.identity import identifiers_for
from fte_core.models import Channel, InboundMessage, Receipt
from fte_core.ports import CrmStore, Turn
from fte_core.testing import InMemoryStore
from tests.integration.test_crm_contract import DAY, T0, inbound


def form(pid: str, email: str = "ana@example.com", text: str | None = None) -> InboundMessage:
    return msgspec.structs.replace(
        inbound(pid, channel=Channel.WEB_FORM, sender_email=email, text=text),
        verified_by=None,  # a form's address is a claim
    )


def digest(number: str) -> bytes:
    return f"digest of {number}".encode()


async def take_in(store: CrmStore, receipt: Receipt) -> Turn:
    return await turn_of(store, receipt.message)


async def email_from_bo(store: CrmStore, pid: str) -> Turn:
    return await turn_of(store, inbound(pid, sender_email="bo@example.com"))


async def turn_of(store: CrmStore, message: InboundMessage) -> Turn:
    return await store.open_turn(message, identifiers_for(message), None, T0, DAY)


async def test_a_receipt_reserves_its_ticket_until_a_worker_takes_it_in(store: CrmStore) -> None:
    receipt = await store.receive(form("f-1"), digest)
    number = receipt.message.reserved_ticket
    assert number is not None
    assert receipt.access_hash == digest(number)
    assert await store.get_ticket(number) is None  # nothing decided yet
    assert await store.receipt(number) == receipt
    assert await store.access_hash(number) == digest(number)  # the status page opens
    assert await store.find_inbound(Channel.WEB_FORM, "f-1") is None

    turn = await take_in(store, receipt)
    assert (turn.created, turn.thread.ticket.number) == (True, number)
    assert turn.thread.ticket.channel is Channel.WEB_FORM
    assert await store.receipt(number) is None  # gone in the same transaction
    assert await store.access_hash(number) == digest(number)  # carried over to the ticket
    again = await take_in(store, receipt)  # a redelivery
    assert (again.created, again.inbound.id) == (False, turn.inbound.id)
    assert again.thread.ticket.number == number


async def test_each_request_gets_its_own_ticket_numbers_never_collide(store: CrmStore) -> None:
    receipts = await asyncio.gather(*(store.receive(form(f"n-{i}"), digest) for i in range(20)))
    numbers = [r.message.reserved_ticket for r in receipts]
    assert len(set(numbers)) == 20
    other = await email_from_bo(store, "e-1")
    assert other.thread.ticket.number not in numbers
    turns = [await take_in(store, r) for r in receipts]
    assert [t.thread.ticket.number for t in turns] == numbers
    assert len({t.resolution.customer.id for t in turns}) == 1  # one customer, 20 tickets


async def test_concurrent_copies_of_a_receipt_open_one_ticket_with_one_message(
    store: CrmStore,
) -> None:
    receipt = await store.receive(form("c-1"), digest)
    turns = await asyncio.gather(*(take_in(store, receipt) for _ in range(6)))
    assert sum(t.created for t in turns) == 1
    assert len({t.inbound.id for t in turns}) == 1
    assert len({t.thread.ticket.number for t in turns}) == 1
    messages = await store.conversation_messages(turns[0].thread.conversation.id)
    assert len(messages) == 1


async def test_a_form_quoting_someone_elses_ticket_gets_its_own_and_a_merge_candidate(
    store: CrmStore,
) -> None:
    owner = await email_from_bo(store, "o-1")
    theirs = owner.thread.ticket.number
    receipt = await store.receive(form("q-1", text=f"About {theirs}: any news?"), digest)
    turn = await take_in(store, receipt)
    assert turn.thread.ticket.number == receipt.message.reserved_ticket != theirs
    assert turn.refused_ticket == theirs
    candidates = await store.merge_candidates(turn.resolution.customer.id)
    assert [c.other_customer_id for c in candidates] == [owner.resolution.customer.id]
    shown = await store.conversation_messages(owner.thread.conversation.id)
    assert [m.provider_message_id for m in shown] == ["o-1"]


async def test_a_receipt_needs_a_sender_and_an_aware_time(store: CrmStore) -> None:
    with pytest.raises(ValidationError, match="sender"):
        await store.receive(msgspec.structs.replace(form("s-1"), sender_email=None), digest)
    naive = msgspec.structs.replace(form("s-2"), received_at=T0.replace(tzinfo=None))
    with pytest.raises(ValidationError, match="received_at"):
        await store.receive(naive, digest)


async def test_the_receipt_is_queued_in_the_same_statement() -> None:
    announced: list[tuple[str, str, object]] = []

    async def on_announce(topic: str, key: str, event: object) -> None:
        announced.append((topic, key, event))

    store = InMemoryStore(on_announce=on_announce)
    receipt = await store.receive(form("m-1"), digest)
    expected = events.ReceivedEvent(
        ticket_number=receipt.message.reserved_ticket or "",
        channel=Channel.WEB_FORM,
        provider_message_id="m-1",
    )
    assert announced == [(events.INBOUND, "email:ana@example.com", expected)]


@pytest.mark.postgres
async def test_postgres_queues_the_receipt_in_its_outbox(
    postgres_store: CrmStore, pg_pool: AsyncConnectionPool[Any]
) -> None:
    receipt = await postgres_store.receive(form("pg-1"), digest)
    async with pg_pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT topic, key, payload FROM outbox WHERE topic = %s", (events.INBOUND,)
        )
        rows = await cursor.fetchall()
    assert [(t, k) for t, k, _ in rows] == [(events.INBOUND, "email:ana@example.com")]
    assert events.decode(bytes(rows[0][2])) == events.ReceivedEvent(
        ticket_number=receipt.message.reserved_ticket or "",
        channel=Channel.WEB_FORM,
        provider_message_id="pg-1",
    )
    assert receipt.message.verified_by is None  # the form's claim stays a claim
