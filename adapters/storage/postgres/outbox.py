"""Writing an event into the outbox inside the caller's transaction (the transactional
outbox): with the PostgreSQL bus the outbox is the queue; with Kafka a relay moves rows."""

from __future__ import annotations

from adapters.storage.postgres.rows import Conn
from fte_core.errors import StorageError


async def enqueue(conn: Conn, topic: str, key: str, payload: bytes) -> int:
    cursor = await conn.execute(
        "INSERT INTO outbox (topic, key, payload) VALUES (%s, %s, %s) RETURNING id",
        (topic, key, payload),
    )
    row = await cursor.fetchone()
    if row is None:
        raise StorageError("the outbox insert returned no id")
    return int(row[0])
