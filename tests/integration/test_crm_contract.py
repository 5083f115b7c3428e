"""One behaviour, two implementations: InMemoryStore and PostgresStore must agree."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from fte_core.errors import InvalidTransition, NotFound, ValidationError
from fte_core.identity import identifiers_for
from fte_core.models import (
    Channel,
    Decision,
    DecisionRecord,
    DeliveryStatus,
    Direction,
    Identifier,
    IdentifierKind,
    InboundMessage,
    Priority,
    Reply,
    TicketStatus,
    Usage,
    Verification,
)
from fte_core.ports import CrmStore, OutboundDraft

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
DAY = timedelta(hours=24)
EMAIL = Identifier(IdentifierKind.EMAIL, "ana@example.com")
PHONE = Identifier(IdentifierKind.PHONE, "+14155550101")


def inbound(
    pid: str,
    *,
    channel: Channel = Channel.EMAIL,
    at: datetime = T0,
    sender_email: str | None = None,
    sender_phone: str | None = None,
    sender_name: str | None = None,
    verified_by: Verification | None = Verification.EMAIL_AUTH,
    text: str | None = None,
    ticket_access: str | None = None,
) -> InboundMessage:
    """Proven by default, as the email and WhatsApp channels deliver messages."""
    return InboundMessage(
        channel=channel,
        provider_message_id=pid,
        text=f"text of {pid}" if text is None else text,
        received_at=at,
        sender_email=sender_email,
        sender_phone=sender_phone,
        sender_name=sender_name,
        verified_by=verified_by,
        ticket_access=ticket_access,
    )


def record(message_id: str) -> DecisionRecord:
    return DecisionRecord(
        message_id=message_id,
        channel=Channel.EMAIL,
        ruleset_version="v1",
        input_decision=Decision(stage="input", action="allow"),
        sentiment=0.6,
        passage_ids=("docs/a/0",),
        latency_ms={"total": 12.5},
        usage=Usage(prompt_tokens=10, completion_tokens=5, cost_usd=0.001),
    )


async def receive(
    store: CrmStore, message: InboundMessage, window: timedelta = DAY
) -> tuple[str, str, str]:
    """Customer, conversation and stored message ids, the way the pipeline gets them."""
    resolution = await store.resolve_customer(identifiers_for(message), message.sender_name)
    thread = await store.thread(
        resolution.customer.id, message.channel, message.received_at, window
    )
    stored, _ = await store.save_inbound(message, resolution.customer.id, thread.conversation.id)
    return resolution.customer.id, thread.conversation.id, stored.id


async def test_web_form_then_email_from_same_address_is_one_customer_conversation_ticket(
    store: CrmStore,
) -> None:
    form = inbound(
        "f-1", channel=Channel.WEB_FORM, sender_email="Ana@Example.com ", sender_name="Ana"
    )
    mail = inbound(
        "m-1", channel=Channel.EMAIL, at=T0 + timedelta(hours=2), sender_email="ana@example.com"
    )
    first = await receive(store, form)
    second = await receive(store, mail)
    assert first[:2] == second[:2]
    conversation = await store.get_conversation(first[1])
    assert conversation is not None
    assert conversation.channel is Channel.WEB_FORM
    assert conversation.ticket_number == "TKT-000001"
    assert conversation.last_message_at == T0 + timedelta(hours=2)
    customer = await store.get_customer(first[0])
    assert customer is not None
    assert customer.name == "Ana"
    assert customer.identifiers == (EMAIL,)
    assert [m.channel for m in await store.conversation_messages(first[1])] == [
        Channel.WEB_FORM,
        Channel.EMAIL,
    ]


async def test_new_identifiers_are_linked_and_whatsapp_lookup_finds_phone(store: CrmStore) -> None:
    created = await store.resolve_customer([EMAIL], None)
    assert created.created
    assert created.linked == ()
    again = await store.resolve_customer([EMAIL, PHONE], "Ana")
    assert not again.created
    assert again.linked == (PHONE,)
    assert again.customer.identifiers == (EMAIL, PHONE)
    assert again.customer.name == "Ana"
    renamed = await store.resolve_customer([PHONE], "Someone Else")
    assert renamed.customer.name == "Ana"
    by_whatsapp = await store.find_customer(
        Identifier(IdentifierKind.WHATSAPP, "whatsapp:+1 415 555 0101")
    )
    assert by_whatsapp is not None
    assert by_whatsapp.id == created.customer.id
    assert await store.find_customer(Identifier(IdentifierKind.EMAIL, "nobody@example.com")) is None
    assert await store.get_customer("not-a-uuid") is None


async def test_conflicting_identifiers_record_merge_candidate_and_never_merge(
    store: CrmStore,
) -> None:
    ana = (await store.resolve_customer([EMAIL], "Ana")).customer
    bob = (await store.resolve_customer([PHONE], "Bob")).customer
    result = await store.resolve_customer([PHONE, EMAIL], None)
    assert result.customer.id == bob.id  # the first identifier decides
    assert result.linked == ()
    assert [
        (c.customer_id, c.other_customer_id, c.identifier) for c in result.merge_candidates
    ] == [(bob.id, ana.id, EMAIL)]
    await store.resolve_customer([PHONE, EMAIL], None)  # seen again: recorded once
    assert await store.merge_candidates(ana.id) == list(result.merge_candidates)
    assert await store.merge_candidates(bob.id) == list(result.merge_candidates)
    bob_now = await store.get_customer(bob.id)
    assert bob_now is not None
    assert bob_now.identifiers == (PHONE,)


async def test_invalid_identifiers_are_rejected(store: CrmStore) -> None:
    with pytest.raises(ValidationError) as error:
        await store.resolve_customer([Identifier(IdentifierKind.EMAIL, "not an email")], None)
    assert error.value.field == "email"
    with pytest.raises(ValidationError):
        await store.resolve_customer([], None)


async def test_concurrent_first_contact_creates_one_customer(store: CrmStore) -> None:
    results = await asyncio.gather(
        *(store.resolve_customer([EMAIL, PHONE], "Ana") for _ in range(10))
    )
    assert len({r.customer.id for r in results}) == 1
    assert sum(r.created for r in results) == 1
    customer = await store.find_customer(PHONE)
    assert customer is not None
    assert customer.identifiers == (EMAIL, PHONE)


async def test_concurrent_threading_opens_one_conversation(store: CrmStore) -> None:
    customer = (await store.resolve_customer([EMAIL], None)).customer
    threads = await asyncio.gather(
        *(store.thread(customer.id, Channel.WHATSAPP, T0, DAY) for _ in range(8))
    )
    assert len({t.conversation.id for t in threads}) == 1
    assert sum(not t.resumed for t in threads) == 1


async def test_inbound_is_idempotent_under_redelivery(store: CrmStore) -> None:
    message = inbound("dup-1", sender_email="ana@example.com")
    customer_id, conversation_id, first_id = await receive(store, message)
    again, new = await store.save_inbound(message, customer_id, conversation_id)
    assert (again.id, new) == (first_id, False)
    results = await asyncio.gather(
        *(store.save_inbound(message, customer_id, conversation_id) for _ in range(5))
    )
    assert {m.id for m, _ in results} == {first_id}
    found = await store.find_inbound(Channel.EMAIL, "dup-1")
    assert found is not None
    assert found.id == first_id
    assert found.direction is Direction.INBOUND
    assert found.delivery_status is DeliveryStatus.RECEIVED
    assert found.created_at == T0
    assert await store.find_inbound(Channel.WHATSAPP, "dup-1") is None
    assert await store.contact_count(customer_id) == 1


async def test_inbound_into_unknown_conversation_is_not_found(store: CrmStore) -> None:
    customer = (await store.resolve_customer([EMAIL], None)).customer
    with pytest.raises(NotFound):
        await store.save_inbound(inbound("x"), customer.id, "3c1d1d7e-0000-4000-8000-000000000000")


async def test_outbound_once_per_inbound_with_record(store: CrmStore) -> None:
    _, conversation_id, inbound_id = await receive(
        store, inbound("in-1", sender_email="ana@example.com")
    )
    draft = OutboundDraft(
        conversation_id=conversation_id,
        channel=Channel.EMAIL,
        in_reply_to=inbound_id,
        reply=Reply(channel=Channel.EMAIL, parts=("Hello Ana,", "Go to Settings.")),
        record=record(inbound_id),
        latency_ms=42.0,
        usage=Usage(prompt_tokens=10, completion_tokens=5, cost_usd=0.001),
    )
    stored, new = await store.save_outbound(draft)
    assert new
    assert stored.text == "Hello Ana,\nGo to Settings."
    assert stored.delivery_status is DeliveryStatus.QUEUED
    assert stored.direction is Direction.OUTBOUND
    assert stored.record == record(inbound_id)
    results = await asyncio.gather(*(store.save_outbound(draft) for _ in range(5)))
    assert {(m.id, n) for m, n in results} == {(stored.id, False)}
    assert await store.reply_to(inbound_id) == stored
    await store.set_delivery_status(stored.id, DeliveryStatus.SENT, "gmail-77")
    sent = await store.get_message(stored.id)
    assert sent is not None
    assert (sent.delivery_status, sent.provider_message_id) == (DeliveryStatus.SENT, "gmail-77")
    await store.set_delivery_status(stored.id, DeliveryStatus.DELIVERED)
    delivered = await store.get_message(stored.id)
    assert delivered is not None
    assert (delivered.delivery_status, delivered.provider_message_id) == (
        DeliveryStatus.DELIVERED,
        "gmail-77",
    )
    with pytest.raises(NotFound):
        await store.set_delivery_status("3c1d1d7e-0000-4000-8000-000000000000", DeliveryStatus.SENT)


async def test_outbound_needs_an_inbound_message(store: CrmStore) -> None:
    _, conversation_id, inbound_id = await receive(
        store, inbound("in-2", sender_email="ana@example.com")
    )
    draft = OutboundDraft(
        conversation_id=conversation_id,
        channel=Channel.EMAIL,
        in_reply_to="3c1d1d7e-0000-4000-8000-000000000000",
        reply=Reply(channel=Channel.EMAIL, parts=("x",)),
        record=record(inbound_id),
    )
    with pytest.raises(NotFound):
        await store.save_outbound(draft)


async def test_ticket_transitions_valid_invalid_and_mirrored(store: CrmStore) -> None:
    customer = (await store.resolve_customer([EMAIL], None)).customer
    thread = await store.thread(
        customer.id, Channel.EMAIL, T0, DAY, category="billing", priority=Priority.HIGH
    )
    number = thread.ticket.number
    assert (thread.ticket.status, thread.ticket.priority, thread.ticket.category) == (
        TicketStatus.OPEN,
        Priority.HIGH,
        "billing",
    )
    escalated = await store.update_ticket(
        number, status=TicketStatus.ESCALATED, escalation_reason="refund", urgency=Priority.HIGH
    )
    assert (escalated.status, escalated.escalation_reason, escalated.urgency) == (
        TicketStatus.ESCALATED,
        "refund",
        Priority.HIGH,
    )
    assert escalated.priority is Priority.HIGH
    conversation = await store.get_conversation(thread.conversation.id)
    assert conversation is not None
    assert conversation.status is TicketStatus.ESCALATED
    with pytest.raises(InvalidTransition):  # a person resolves a hand-over before it closes
        await store.update_ticket(number, status=TicketStatus.CLOSED)
    await store.update_ticket(number, status=TicketStatus.RESOLVED)
    await store.update_ticket(number, status=TicketStatus.CLOSED)
    with pytest.raises(InvalidTransition):
        await store.update_ticket(number, status=TicketStatus.OPEN)
    with pytest.raises(NotFound):
        await store.update_ticket("TKT-999999", status=TicketStatus.OPEN)
    assert await store.get_ticket("TKT-999999") is None
    fetched = await store.get_ticket(number)
    assert fetched is not None
    assert fetched.status is TicketStatus.CLOSED


async def test_threading_window_reopen_and_closed(store: CrmStore) -> None:
    customer = (await store.resolve_customer([EMAIL], None)).customer
    first = await store.thread(customer.id, Channel.EMAIL, T0, DAY)
    assert not first.resumed
    same = await store.thread(customer.id, Channel.WHATSAPP, T0 + timedelta(hours=23), DAY)
    assert (same.resumed, same.conversation.id) == (True, first.conversation.id)
    await store.update_ticket(first.ticket.number, status=TicketStatus.RESOLVED)
    reopened = await store.thread(customer.id, Channel.EMAIL, T0 + timedelta(hours=30), DAY)
    assert (reopened.resumed, reopened.reopened) == (True, True)
    assert reopened.ticket.status is TicketStatus.OPEN
    assert reopened.conversation.status is TicketStatus.OPEN
    late = await store.thread(customer.id, Channel.EMAIL, T0 + timedelta(hours=60), DAY)
    assert not late.resumed
    assert late.ticket.number != first.ticket.number
    assert late.conversation.channel is Channel.EMAIL
    await store.update_ticket(late.ticket.number, status=TicketStatus.RESOLVED)
    await store.update_ticket(late.ticket.number, status=TicketStatus.CLOSED)
    fresh = await store.thread(customer.id, Channel.WEB_FORM, T0 + timedelta(hours=61), DAY)
    assert not fresh.resumed
    assert fresh.conversation.channel is Channel.WEB_FORM
    numbers = [first.ticket.number, late.ticket.number, fresh.ticket.number]
    assert numbers == ["TKT-000001", "TKT-000002", "TKT-000003"]
    with pytest.raises(NotFound):
        await store.thread("3c1d1d7e-0000-4000-8000-000000000000", Channel.EMAIL, T0, DAY)


async def test_history_is_latest_oldest_first_and_isolated(store: CrmStore) -> None:
    ana_ids = None
    for i in range(6):
        channel = [Channel.EMAIL, Channel.WHATSAPP, Channel.WEB_FORM][i % 3]
        message = inbound(
            f"a-{i}",
            channel=channel,
            at=T0 + timedelta(days=i),
            sender_email="ana@example.com",
            sender_phone="+14155550101",
        )
        ana_ids = await receive(store, message)
    bob = await receive(
        store, inbound("b-0", at=T0 + timedelta(days=3), sender_email="bob@example.com")
    )
    assert ana_ids is not None
    history = await store.customer_history(ana_ids[0], limit=4)
    assert [h.text for h in history] == [f"text of a-{i}" for i in range(2, 6)]
    assert [h.channel for h in history] == [
        Channel.WEB_FORM,
        Channel.EMAIL,
        Channel.WHATSAPP,
        Channel.WEB_FORM,
    ]
    assert all(h.ticket_number.startswith("TKT-") for h in history)
    bob_history = await store.customer_history(bob[0])
    assert [h.text for h in bob_history] == ["text of b-0"]
    assert await store.contact_count(ana_ids[0]) == 6
    assert await store.contact_count(bob[0]) == 1
    assert await store.customer_history(ana_ids[0], limit=0) == []


async def test_naive_datetimes_are_rejected(store: CrmStore) -> None:
    customer = (await store.resolve_customer([EMAIL], None)).customer
    with pytest.raises(ValidationError):
        await store.thread(customer.id, Channel.EMAIL, datetime(2025, 1, 1), DAY)
