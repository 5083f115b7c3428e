"""PostgresMailboxes: the Gmail sync's history-id watermark per mailbox (migrations 0003, 0011)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg_pool import AsyncConnectionPool

from adapters.storage.postgres.pool import connection
from fte_core.errors import StorageError


class PostgresMailboxes:
    def __init__(self, pool: AsyncConnectionPool[Any]) -> None:
        self._pool = pool

    async def watermark(self, mailbox: str) -> int | None:
        async with connection(self._pool, "read mailbox watermark") as conn:
            cursor = await conn.execute(
                "SELECT history_id FROM mailbox_watermarks WHERE mailbox = %s", (mailbox,)
            )
            row = await cursor.fetchone()
        return int(row[0]) if row else None

    async def advance(self, mailbox: str, history_id: int) -> None:
        async with connection(self._pool, "advance mailbox watermark") as conn:
            await conn.execute(
                """INSERT INTO mailbox_watermarks (mailbox, history_id) VALUES (%s, %s)
                   ON CONFLICT (mailbox) DO UPDATE
                   SET history_id = GREATEST(mailbox_watermarks.history_id, EXCLUDED.history_id),
                       updated_at = now()""",
                (mailbox, history_id),
            )

    async def record_watch(self, mailbox: str, history_id: int, expires_at: datetime) -> int:
        async with connection(self._pool, "record mailbox watch") as conn:
            cursor = await conn.execute(
                """INSERT INTO mailbox_watermarks (mailbox, history_id, watch_expires_at)
                   VALUES (%s, %s, %s)
                   ON CONFLICT (mailbox) DO UPDATE
                   SET watch_expires_at = EXCLUDED.watch_expires_at, updated_at = now()
                   RETURNING history_id""",
                (mailbox, history_id, expires_at),
            )
            row = await cursor.fetchone()
        if row is None:
            raise StorageError("record mailbox watch: no row returned")
        return int(row[0])

    async def watch_expiry(self, mailbox: str) -> datetime | None:
        async with connection(self._pool, "read mailbox watch") as conn:
            cursor = await conn.execute(
                "SELECT watch_expires_at FROM mailbox_watermarks WHERE mailbox = %s", (mailbox,)
            )
            row = await cursor.fetchone()
        return row[0] if row else None
