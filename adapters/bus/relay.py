"""The transactional outbox's relay: move `outbox` rows to Kafka, then mark them sent.

Intake stores a message and its outbox row in one transaction (`adapters.bus.postgres.
enqueue`); this relay publishes pending rows in id order and marks them `sent_at` in the
same transaction that locked them. If the broker is down the publish fails, the
transaction rolls back, and the rows are tried again after a backoff: nothing is lost. A
crash between the broker's ack and the commit publishes a row twice (at-least-once); the
record's `fte-id` header is the row id, so consumers recognise the copy.

Run one relay per database for strict per-key order (several relays are safe, since rows
are locked with SKIP LOCKED, but may interleave one key's rows).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from adapters.bus.kafka import KafkaBus
from adapters.bus.postgres import listen, unlisten, wait_for_notify
from adapters.bus.retry import RetryPolicy
from fte_core.errors import BusError

log = logging.getLogger(__name__)

_PENDING = """
SELECT id, topic, key, payload FROM outbox WHERE sent_at IS NULL
ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED
"""


class OutboxRelay:
    def __init__(
        self,
        pool: AsyncConnectionPool[Any],
        bus: KafkaBus,
        *,
        batch: int = 500,
        idle_poll: float = 1.0,
        retention: float = 3600.0,
        backoff: RetryPolicy | None = None,
    ) -> None:
        self._pool = pool
        self._bus = bus
        self._batch = batch
        self._idle_poll = idle_poll
        self._retention = retention  # seconds sent rows are kept (for audit), then purged
        self._backoff = backoff or RetryPolicy(max_attempts=1, backoff=0.5, max_backoff=30.0)
        self.relayed = 0
        self.failures = 0  # failed attempts so far (broker or database down)

    async def relay_once(self) -> int:
        """Publish one batch of pending rows; returns how many were sent."""
        try:
            async with self._pool.connection() as conn, conn.transaction():
                cursor = await conn.execute(_PENDING, (self._batch,))
                rows = await cursor.fetchall()
                if not rows:
                    return 0
                acks = [
                    await self._bus.send(topic, key, bytes(payload), str(id_))
                    for id_, topic, key, payload in rows
                ]
                await asyncio.gather(*acks)
                await conn.execute(
                    "UPDATE outbox SET sent_at = now() WHERE id = ANY(%s)",
                    ([row[0] for row in rows],),
                )
        except psycopg.Error as exc:
            raise BusError(f"outbox relay: {exc}") from exc
        self.relayed += len(rows)
        return len(rows)

    async def purge(self) -> int:
        """Delete rows sent longer ago than the retention."""
        try:
            async with self._pool.connection() as conn:
                cursor = await conn.execute(
                    "DELETE FROM outbox WHERE sent_at < now() - make_interval(secs => %s)",
                    (self._retention,),
                )
        except psycopg.Error as exc:
            raise BusError(f"outbox purge: {exc}") from exc
        return int(cursor.rowcount)

    async def run(self, stop: asyncio.Event) -> None:
        """Relay until `stop`; broker or database failures are retried with backoff."""
        failures = 0
        listener = await listen(self._pool)
        try:
            while not stop.is_set():
                try:
                    sent = await self.relay_once()
                    if sent == 0:
                        await self.purge()
                    failures = 0
                except BusError as exc:
                    failures += 1
                    self.failures += 1
                    delay = self._backoff.delay(failures)
                    log.warning("outbox relay failed (%s); retrying in %.1f s", exc, delay)
                    await _sleep_unless(stop, delay)
                    continue
                if sent == 0 and not await wait_for_notify(listener, self._idle_poll):
                    await unlisten(self._pool, listener)
                    listener = await listen(self._pool)
        finally:
            await unlisten(self._pool, listener)


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        return
