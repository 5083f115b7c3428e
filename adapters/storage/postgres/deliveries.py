"""PostgresDeliveries: the DeliveryLedger over the `delivery_parts` table (migration 0010).

A status report and the deliverer's `settle` both lock the reply's row first, so the
reply's status is computed from a consistent set of parts however the reports race.
"""

from __future__ import annotations

import uuid
from typing import Any

from psycopg_pool import AsyncConnectionPool

from adapters.storage.postgres.pool import connection
from adapters.storage.postgres.rows import Conn, as_uuid
from fte_core.delivery import WENT_OUT, advance, aggregate
from fte_core.errors import NotFound
from fte_core.models import Channel, DeliveryStatus
from fte_core.ports import DeliveryPart, DeliveryState

_LOCK_REPLY = """SELECT delivery_status, delivery_error FROM messages
    WHERE id = %s AND direction = 'outbound' FOR UPDATE"""
_PARTS = """SELECT part, provider_message_id, status, error FROM delivery_parts
    WHERE message_id = %s ORDER BY part"""


class PostgresDeliveries:
    def __init__(self, pool: AsyncConnectionPool[Any]) -> None:
        self._pool = pool

    async def record_part(
        self, message_id: str, channel: Channel, index: int, provider_message_id: str
    ) -> None:
        key = _key(message_id)
        async with connection(self._pool, "PostgreSQL") as conn:
            await conn.execute(
                """INSERT INTO delivery_parts (message_id, part, channel, provider_message_id)
                   VALUES (%s, %s, %s, %s) ON CONFLICT (message_id, part) DO NOTHING""",
                (key, index, channel.value, provider_message_id),
            )

    async def state(self, message_id: str) -> DeliveryState | None:
        key = as_uuid(message_id)
        if key is None:
            return None
        async with connection(self._pool, "PostgreSQL") as conn:
            return await _state(conn, key, lock=False)

    async def settle(self, message_id: str) -> DeliveryStatus:
        key = _key(message_id)
        async with connection(self._pool, "PostgreSQL") as conn, conn.transaction():
            state = await _state(conn, key, lock=True)
            if state is None:
                raise NotFound(f"outbound message {message_id}")
            status = aggregate(p.status for p in state.parts)
            first = state.parts[0].provider_message_id if state.parts else None
            await conn.execute(
                """UPDATE messages SET delivery_status = %s, delivery_error = NULL,
                       provider_message_id = coalesce(%s, provider_message_id)
                   WHERE id = %s""",
                (status.value, first, key),
            )
        return status

    async def record_failure(self, message_id: str, status: DeliveryStatus, error: str) -> None:
        async with connection(self._pool, "PostgreSQL") as conn:
            cursor = await conn.execute(
                """UPDATE messages SET delivery_status = %s, delivery_error = %s
                   WHERE id = %s AND direction = 'outbound' RETURNING 1""",
                (status.value, error[:2000], _key(message_id)),
            )
            if await cursor.fetchone() is None:
                raise NotFound(f"outbound message {message_id}")

    async def part_status(
        self,
        channel: Channel,
        provider_message_id: str,
        status: DeliveryStatus,
        error: str | None = None,
    ) -> DeliveryState | None:
        async with connection(self._pool, "PostgreSQL") as conn, conn.transaction():
            cursor = await conn.execute(
                """SELECT message_id, part FROM delivery_parts
                   WHERE channel = %s AND provider_message_id = %s""",
                (channel.value, provider_message_id),
            )
            found = await cursor.fetchone()
            if found is None:
                return None
            key, index = found
            state = await _state(conn, key, lock=True)
            if state is None:
                return None
            part = next(p for p in state.parts if p.index == index)
            moved = advance(part.status, status)
            await conn.execute(
                """UPDATE delivery_parts SET status = %s, error = coalesce(%s, error),
                       updated_at = now() WHERE message_id = %s AND part = %s""",
                (moved.value, error, key, index),
            )
            if state.status in WENT_OUT:
                statuses = [moved if p.index == index else p.status for p in state.parts]
                settled = aggregate(statuses)
                failure = f"part {index + 1}: {moved.value} {error or ''}".strip()
                await conn.execute(
                    """UPDATE messages SET delivery_status = %s,
                           delivery_error = CASE WHEN %s THEN %s ELSE delivery_error END
                       WHERE id = %s""",
                    (
                        settled.value,
                        settled is DeliveryStatus.UNDELIVERED,
                        failure,
                        key,
                    ),
                )
            return await _state(conn, key, lock=False)


def _key(message_id: str) -> uuid.UUID:
    key = as_uuid(message_id)
    if key is None:
        raise NotFound(f"message {message_id!r}")
    return key


async def _state(conn: Conn, key: uuid.UUID, *, lock: bool) -> DeliveryState | None:
    sql = _LOCK_REPLY if lock else _LOCK_REPLY.replace(" FOR UPDATE", "")
    cursor = await conn.execute(sql, (key,))
    row = await cursor.fetchone()
    if row is None:
        return None
    cursor = await conn.execute(_PARTS, (key,))
    parts = tuple(
        DeliveryPart(index=r[0], provider_message_id=r[1], status=DeliveryStatus(r[2]), error=r[3])
        for r in await cursor.fetchall()
    )
    return DeliveryState(
        message_id=str(key), status=DeliveryStatus(row[0]), error=row[1], parts=parts
    )
