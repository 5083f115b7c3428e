"""PostgresNotes: operators' notes on tickets (migration 0012)."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from adapters.storage.postgres.pool import connection
from fte_core.errors import NotFound, StorageError
from fte_core.notes import clean_note
from fte_core.ports import TicketNote

_COLUMNS = "id, ticket_number, author, text, created_at"


def _note(row: tuple[Any, ...]) -> TicketNote:
    return TicketNote(
        id=row[0], ticket_number=row[1], author=row[2], text=row[3], created_at=row[4]
    )


class PostgresNotes:
    def __init__(self, pool: AsyncConnectionPool[Any]) -> None:
        self._pool = pool

    async def add_note(self, number: str, author: str, text: str) -> TicketNote:
        author, text = clean_note(author, text)
        try:
            async with connection(self._pool, "add a note") as conn:
                cursor = await conn.execute(
                    f"INSERT INTO ticket_notes (ticket_number, author, text)"
                    f" VALUES (%s, %s, %s) RETURNING {_COLUMNS}",
                    (number, author, text),
                )
                row = await cursor.fetchone()
        except StorageError as exc:
            if isinstance(exc.__cause__, psycopg.errors.ForeignKeyViolation):
                raise NotFound(f"ticket {number!r}") from exc
            raise
        if row is None:
            raise StorageError("add a note: the insert returned no row")
        return _note(row)

    async def notes(self, number: str) -> list[TicketNote]:
        async with connection(self._pool, "read notes") as conn:
            cursor = await conn.execute(
                f"SELECT {_COLUMNS} FROM ticket_notes WHERE ticket_number = %s ORDER BY id",
                (number,),
            )
            return [_note(row) for row in await cursor.fetchall()]
