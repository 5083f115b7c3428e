"""PostgresReportQueries: what the digest and the resolution rate read, in one query each
(messages with their customer; the outbox and dead letters)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg_pool import AsyncConnectionPool

from adapters.storage.postgres import rows
from adapters.storage.postgres.pool import connection
from fte_core.clock import as_utc
from fte_core.ports import CustomerMessage, QueueFigures

_MESSAGES = f"""SELECT {rows.MESSAGE_COLUMNS}, m.customer_id FROM messages m
    WHERE m.created_at >= %s AND m.created_at < %s ORDER BY m.created_at, m.seq"""
_QUEUED = "SELECT topic, count(*) FROM outbox WHERE sent_at IS NULL GROUP BY topic"
_DEAD = """SELECT count(*) FILTER (WHERE failed_at >= %s AND failed_at < %s), count(*)
    FROM dead_letters"""


class PostgresReportQueries:
    """`dead_letters_table`: False when dead letters go elsewhere (Kafka's dead-letter
    topic), so the figures say "unknown" rather than a misleading zero."""

    def __init__(self, pool: AsyncConnectionPool[Any], *, dead_letters_table: bool = True):
        self._pool = pool
        self._dead_letters_table = dead_letters_table

    async def customer_messages(self, since: datetime, until: datetime) -> list[CustomerMessage]:
        params = (as_utc(since, "since"), as_utc(until, "until"))
        async with connection(self._pool, "read messages for a report") as conn:
            cursor = await conn.execute(_MESSAGES, params)
            found = await cursor.fetchall()
        return [
            CustomerMessage(customer_id=str(row[-1]), message=rows.message(row)) for row in found
        ]

    async def queue_figures(self, since: datetime, until: datetime) -> QueueFigures:
        params = (as_utc(since, "since"), as_utc(until, "until"))
        async with connection(self._pool, "read queue figures") as conn:
            queued = await (await conn.execute(_QUEUED)).fetchall()
            dead = await (await conn.execute(_DEAD, params)).fetchone()
        if not self._dead_letters_table or dead is None:
            return QueueFigures(queued_by_topic={str(t): int(n) for t, n in queued})
        return QueueFigures(
            queued_by_topic={str(t): int(n) for t, n in queued},
            dead_letters=int(dead[0]),
            dead_letters_total=int(dead[1]),
        )
