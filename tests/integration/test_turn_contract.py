"""The one-transaction intake (open_turn) and the reply's ticket move: both stores agree."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest

from fte_core.errors import ValidationError
from fte_core.identity import identifiers_for
from fte_core.models import Channel, InboundMessage, Reply, TicketStatus, Verification
from fte_core.ports import CrmStore, OutboundDraft, Turn
from tests.integration.test_crm_contract import DAY, EMAIL, T0, inbound, record


async def take(store: CrmStore, message: InboundMessage, now: datetime | None = None) -> Turn:
    return await store.open_turn(
        message,
        identifiers_for(message),
        message.sender_name,
        now or message.received_at,
        DAY,
        category="how-to",
    )


async def answer(store: CrmStore, turn: Turn, status: TicketStatus | None) -> bool:
    _, new = await store.save_outbound(
        OutboundDraft(
            conversation_id=turn.thread.conversation.id,
            channel=turn.inbound.channel,
            in_reply_to=turn.inbound.id,
            reply=Reply(channel=turn.inbound.channel, parts=("Go to Settings.",)),
            record=record(turn.inbound.id),
            ticket_status=status,
        )
    )
    return new


async def test_first_message_creates_customer_thread_and_message(store: CrmStore) -> None:
    turn = await take(store, inbound("t-1", sender_email="Ana@Example.com", sender_name=" Ana "))
    assert (turn.resolution.created, turn.created, turn.contact_count) == (True, True, 1)
    assert turn.resolution.customer.identifiers == (EMAIL,)
    assert turn.resolution.customer.name == "Ana"
    assert turn.resolution.customer == await store.get_customer(turn.resolution.customer.id)
    assert not turn.thread.resumed
    assert turn.thread.ticket.number == "TKT-000001"
    assert turn.thread.ticket.category == "how-to"
    assert turn.thread.conversation == await store.get_conversation(turn.thread.conversation.id)
    assert turn.inbound == await store.find_inbound(Channel.EMAIL, "t-1")
    assert turn.inbound.created_at == T0


async def test_redelivery_returns_the_stored_message_in_its_own_thread(store: CrmStore) -> None:
    message = inbound("t-2", sender_email="ana@example.com")
    first = await take(store, message)
    again = await take(store, message, now=T0 + timedelta(days=5))  # past the window
    assert (again.created, again.resolution.created) == (False, False)
    assert again.inbound == first.inbound
    assert again.thread.conversation.id == first.thread.conversation.id
    assert again.thread.resumed
    assert again.contact_count == 1
    assert len(await store.conversation_messages(first.thread.conversation.id)) == 1


async def test_second_message_resumes_and_counts(store: CrmStore) -> None:
    first = await take(store, inbound("t-3", sender_email="ana@example.com"))
    second = await take(
        store,
        inbound(
            "t-4",
            channel=Channel.EMAIL,
            at=T0 + timedelta(hours=2),
            sender_email="ana@example.com",
            sender_phone="+14155550101",
        ),
    )
    assert second.resolution.customer.id == first.resolution.customer.id
    assert len(second.resolution.linked) == 1
    assert second.thread.resumed
    assert second.thread.ticket.number == first.thread.ticket.number
    assert second.thread.conversation.last_message_at == T0 + timedelta(hours=2)
    assert second.contact_count == 2
    # A WhatsApp from the phone t-4 claimed continues the ticket, and is shown only the
    # message that named its phone (t-4), not the email-only t-3: a claim links, it does not
    # open the customer's history.
    third = await take(
        store,
        inbound(
            "t-5",
            channel=Channel.WHATSAPP,
            at=T0 + timedelta(hours=3),
            sender_phone="+14155550101",
            verified_by=Verification.PROVIDER_SIGNED,
        ),
    )
    assert third.resolution.customer.id == first.resolution.customer.id
    assert third.thread.ticket.number == first.thread.ticket.number
    shown = await store.visible_history(third.inbound.id)
    assert [h.text for h in shown] == ["text of t-4"]


async def test_concurrent_first_messages_from_a_new_address_make_one_customer(
    store: CrmStore,
) -> None:
    turns = await asyncio.gather(
        *(take(store, inbound(f"c-{i}", sender_email="ana@example.com")) for i in range(6))
    )
    assert len({t.resolution.customer.id for t in turns}) == 1
    assert sum(t.resolution.created for t in turns) == 1
    assert len({t.thread.conversation.id for t in turns}) == 1
    assert sorted(t.contact_count for t in turns) == [1, 2, 3, 4, 5, 6]
    assert len(await store.conversation_messages(turns[0].thread.conversation.id)) == 6


async def test_concurrent_redeliveries_store_the_message_once(store: CrmStore) -> None:
    message = inbound("dup", sender_email="ana@example.com")
    turns = await asyncio.gather(*(take(store, message) for _ in range(6)))
    assert len({t.inbound.id for t in turns}) == 1
    assert sum(t.created for t in turns) == 1
    assert len({t.thread.conversation.id for t in turns}) == 1
    assert {t.contact_count for t in turns} == {1}


async def test_pending_ticket_reopens_and_resolved_ticket_reopens(store: CrmStore) -> None:
    first = await take(store, inbound("p-1", sender_email="ana@example.com"))
    assert await answer(store, first, TicketStatus.PENDING)
    pending = await store.get_ticket(first.thread.ticket.number)
    assert pending is not None
    assert pending.status is TicketStatus.PENDING
    second = await take(store, inbound("p-2", at=T0 + timedelta(hours=1), sender_email=EMAIL.value))
    assert second.thread.ticket.status is TicketStatus.OPEN
    assert second.thread.conversation.status is TicketStatus.OPEN
    assert second.thread.ticket == await store.get_ticket(first.thread.ticket.number)
    await store.update_ticket(first.thread.ticket.number, status=TicketStatus.RESOLVED)
    third = await take(store, inbound("p-3", at=T0 + timedelta(hours=2), sender_email=EMAIL.value))
    assert (third.thread.reopened, third.thread.ticket.status) == (True, TicketStatus.OPEN)


async def test_a_refused_message_leaves_nothing_behind(store: CrmStore) -> None:
    naive = inbound("n-1", at=datetime(2025, 3, 3, 9, 0), sender_email="ana@example.com")
    with pytest.raises(ValidationError):
        await take(store, naive, now=T0)
    with pytest.raises(ValidationError):
        await take(store, inbound("n-2", sender_email="not an address"))
    assert await store.find_customer(EMAIL) is None
    assert await store.find_inbound(Channel.EMAIL, "n-1") is None


async def test_token_access_is_granted_with_the_turn_and_only_when_asked(store: CrmStore) -> None:
    plain = await take(store, inbound("a-1", sender_email="ana@example.com"))
    assert await store.access_hash(plain.thread.ticket.number) is None
    granted = await store.open_turn(
        inbound("a-2", sender_email="bo@example.com"),
        [identifiers_for(inbound("a-2", sender_email="bo@example.com"))[0]],
        None,
        T0,
        DAY,
        access=lambda number: f"digest of {number}".encode(),
    )
    number = granted.thread.ticket.number
    assert number != plain.thread.ticket.number
    assert await store.access_hash(number) == f"digest of {number}".encode()


async def test_reply_moves_the_ticket_once_and_only_when_allowed(store: CrmStore) -> None:
    turn = await take(store, inbound("r-1", sender_email="ana@example.com"))
    number = turn.thread.ticket.number
    assert await answer(store, turn, TicketStatus.PENDING)
    conversation = await store.get_conversation(turn.thread.conversation.id)
    assert conversation is not None
    assert conversation.status is TicketStatus.PENDING
    await store.update_ticket(number, status=TicketStatus.OPEN)
    assert not await answer(store, turn, TicketStatus.PENDING)  # not new: nothing moves
    ticket = await store.get_ticket(number)
    assert ticket is not None
    assert ticket.status is TicketStatus.OPEN
    await store.update_ticket(number, status=TicketStatus.RESOLVED)
    later = await take(store, inbound("r-2", at=T0 + timedelta(hours=1), sender_email=EMAIL.value))
    await store.update_ticket(number, status=TicketStatus.RESOLVED)
    assert await answer(store, later, TicketStatus.PENDING)  # resolved -> pending is refused
    ticket = await store.get_ticket(number)
    assert ticket is not None
    assert ticket.status is TicketStatus.RESOLVED
    assert await answer(store, await take(store, inbound("r-3", sender_email=EMAIL.value)), None)
