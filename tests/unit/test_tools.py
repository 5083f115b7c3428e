"""The agent tools over the fakes: validation, isolation, escalation events."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fte_core import events, tools
from fte_core.errors import NotFound, ValidationError
from fte_core.models import Channel, Identifier, IdentifierKind, Priority, TicketStatus
from fte_core.ports import Chunk
from fte_core.testing import InMemoryBus, InMemoryKnowledgeBase, InMemoryStore


async def _customer(store: InMemoryStore, email: str) -> str:
    res = await store.resolve_customer([Identifier(IdentifierKind.EMAIL, email)], None)
    return res.customer.id


async def test_search_validates_its_arguments() -> None:
    kb = InMemoryKnowledgeBase()
    await kb.ingest("docs", [Chunk(id="docs/a/0", document="docs", section="A", text="hello")])
    with pytest.raises(ValidationError) as err:
        await tools.search_knowledge_base(kb, "  ")
    assert err.value.field == "query"
    with pytest.raises(ValidationError) as err:
        await tools.search_knowledge_base(kb, "hello", limit=0)
    assert err.value.field == "limit"


async def test_create_ticket_needs_a_known_customer() -> None:
    store = InMemoryStore()
    with pytest.raises(NotFound):
        await tools.create_ticket(store, "no-such-customer", Channel.EMAIL)
    customer = await _customer(store, "a@example.com")
    thread = await tools.create_ticket(store, customer, Channel.EMAIL)
    assert thread.ticket.number.startswith("TKT-")
    assert thread.ticket.status == TicketStatus.OPEN


async def test_history_never_returns_another_customers_messages() -> None:
    from fte_core.models import InboundMessage

    store = InMemoryStore()
    ana = await _customer(store, "ana@example.com")
    bob = await _customer(store, "bob@example.com")
    for who, text in ((ana, "ana's secret"), (bob, "bob's question")):
        thread = await tools.create_ticket(store, who, Channel.EMAIL)
        await store.save_inbound(
            InboundMessage(
                channel=Channel.EMAIL,
                provider_message_id=f"p-{who}",
                text=text,
                received_at=datetime.now(UTC),
                sender_email="x@example.com",
            ),
            who,
            thread.conversation.id,
        )
    history = await tools.get_customer_history(store, bob)
    assert [h.text for h in history] == ["bob's question"]


async def test_escalate_marks_the_ticket_and_publishes() -> None:
    store, bus = InMemoryStore(), InMemoryBus()
    customer = await _customer(store, "c@example.com")
    thread = await tools.create_ticket(store, customer, Channel.WEB_FORM)
    ticket = await tools.escalate_to_human(
        store,
        bus,
        thread.ticket.number,
        ("legal", "refund"),
        Priority.CRITICAL,
        message_id="m1",
        channel=Channel.WEB_FORM,
    )
    assert ticket.status == TicketStatus.ESCALATED
    assert ticket.escalation_reason == "legal"
    assert ticket.priority == Priority.CRITICAL
    (event,) = bus.on(events.ESCALATIONS)
    assert isinstance(event, events.EscalationEvent)
    assert event.reasons == ("legal", "refund")
    with pytest.raises(ValidationError):
        await tools.escalate_to_human(
            store,
            bus,
            thread.ticket.number,
            (),
            Priority.LOW,
            message_id="m",
            channel=Channel.EMAIL,
        )
    with pytest.raises(NotFound):
        await tools.escalate_to_human(
            store,
            bus,
            "TKT-999999",
            ("legal",),
            Priority.LOW,
            message_id="m",
            channel=Channel.EMAIL,
        )


async def test_explain_decision_for_an_unknown_message_is_not_found() -> None:
    with pytest.raises(NotFound):
        await tools.explain_decision(InMemoryStore(), "nope")
