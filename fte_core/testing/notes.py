"""InMemoryNotes: the TicketNotes fake."""

from __future__ import annotations

from datetime import UTC, datetime

from fte_core.errors import NotFound
from fte_core.notes import clean_note
from fte_core.ports import CrmStore, TicketNote


class InMemoryNotes:
    def __init__(self, store: CrmStore) -> None:
        self._store = store
        self._notes: list[TicketNote] = []

    async def add_note(self, number: str, author: str, text: str) -> TicketNote:
        author, text = clean_note(author, text)
        if await self._store.get_ticket(number) is None:
            raise NotFound(f"ticket {number!r}")
        note = TicketNote(
            id=len(self._notes) + 1,
            ticket_number=number,
            author=author,
            text=text,
            created_at=datetime.now(UTC),
        )
        self._notes.append(note)
        return note

    async def notes(self, number: str) -> list[TicketNote]:
        return [n for n in self._notes if n.ticket_number == number]
