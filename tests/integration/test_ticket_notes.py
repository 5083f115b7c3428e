"""The TicketNotes contract, over the in-memory fake and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fte_core.errors import NotFound, ValidationError
from fte_core.identity import identifiers_for
from fte_core.models import Channel, InboundMessage
from fte_core.notes import MAX_NOTE_CHARS
from fte_core.ports import CrmStore, TicketNotes
from fte_core.testing.notes import InMemoryNotes


@pytest.fixture
def notes(store: CrmStore, request: pytest.FixtureRequest) -> TicketNotes:
    from fte_core.testing.store import InMemoryStore

    if isinstance(store, InMemoryStore):
        return InMemoryNotes(store)
    from adapters.storage.postgres.notes import PostgresNotes

    return PostgresNotes(request.getfixturevalue("pg_pool"))


async def a_ticket(store: CrmStore) -> str:
    message = InboundMessage(
        channel=Channel.EMAIL,
        provider_message_id="n-1",
        text="Where is my invoice?",
        received_at=datetime.now(UTC),
        sender_email="ana@example.com",
        subject="Invoice",
    )
    turn = await store.open_turn(
        message, identifiers_for(message), "Ana", message.received_at, timedelta(hours=24)
    )
    return turn.thread.ticket.number


async def test_notes_are_kept_per_ticket_oldest_first(store: CrmStore, notes: TicketNotes) -> None:
    number = await a_ticket(store)
    assert await notes.notes(number) == []
    first = await notes.add_note(
        number, "  Grace   Hopper ", "  Called back; waiting for the bank. "
    )
    second = await notes.add_note(number, "Ada", "Refund approved by finance.")
    assert (first.author, first.text, first.ticket_number) == (
        "Grace Hopper",
        "Called back; waiting for the bank.",
        number,
    )
    assert [n.id for n in await notes.notes(number)] == [first.id, second.id]
    assert await notes.notes("TKT-999999") == []


async def test_bad_notes_are_refused_naming_the_field(store: CrmStore, notes: TicketNotes) -> None:
    number = await a_ticket(store)
    with pytest.raises(ValidationError) as empty:
        await notes.add_note(number, "Ada", "   ")
    assert empty.value.field == "note"
    with pytest.raises(ValidationError) as long:
        await notes.add_note(number, "Ada", "x" * (MAX_NOTE_CHARS + 1))
    assert long.value.field == "note"
    with pytest.raises(ValidationError) as nameless:
        await notes.add_note(number, " ", "text")
    assert nameless.value.field == "operator"
    with pytest.raises(NotFound):
        await notes.add_note("TKT-999999", "Ada", "on no ticket")
    assert await notes.notes(number) == []
