"""Wake-ups for the PostgreSQL queue's consumers, sent after the data has committed.

Why not a trigger (0007 had one, 0019 drops it): a NOTIFY inside the transaction that
inserts the outbox row makes its commit take PostgreSQL's database-wide notify lock and
hold it through the commit's WAL flush, so every notifying commit (each form post's,
each reply's) waited for the others' flushes in turn: intake's tail latency grew with the
worker's writes. Here a writer pokes the pool's `Hint` once its transaction is in:
consumers in the same process wake at once, and other processes get one NOTIFY per short
window, sent in a transaction of its own that does not wait for a flush (asynchronous
commit). A hint is only a hint: consumers still poll, so a lost one delays work by at
most their poll interval and loses nothing.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
import weakref
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolClosed, PoolTimeout

log = logging.getLogger(__name__)

CHANNEL = "fte_outbox"

# One statement (one round trip); set_config(..., true) lasts this transaction only, so the
# pooled connection's later commits still wait for their flush.
_SEND = "SELECT set_config('synchronous_commit', 'off', true), pg_notify(%s, %s)"


class Hint:
    """The wake-up of one pool's writers. `poke` after a commit that queued events."""

    def __init__(self, pool: AsyncConnectionPool[Any], *, gap: float = 0.005) -> None:
        # weak: the registry below keeps one Hint per pool for as long as the pool lives
        self._pool = weakref.ref(pool)
        self._gap = gap  # seconds between two NOTIFYs: pokes within it share the next one
        self.token = uuid.uuid4().hex  # the NOTIFY payload: listeners skip their own process's
        self._waiters: set[asyncio.Event] = set()
        self._pending = False
        self._sender: asyncio.Task[None] | None = None

    def waiter(self) -> asyncio.Event:
        """An event set by every poke in this process (the caller clears it)."""
        event = asyncio.Event()
        self._waiters.add(event)
        return event

    def forget(self, event: asyncio.Event) -> None:
        self._waiters.discard(event)

    def wake_local(self) -> None:
        for event in self._waiters:
            event.set()

    def poke(self) -> None:
        """Events were committed: wake this process's consumers now and the others' soon.
        Never raises and never waits: the caller's work is done and must not pay for it."""
        self.wake_local()
        self._pending = True
        if self._sender is None:
            self._sender = asyncio.get_running_loop().create_task(self._send_all())

    async def close(self) -> None:
        """Let the wake-ups due go out (before the pool closes)."""
        if self._sender is not None:
            await asyncio.shield(self._sender)

    async def _send_all(self) -> None:
        try:
            while self._pending:
                self._pending = False
                await self._send()
                await asyncio.sleep(self._gap)
        finally:
            self._sender = None

    async def _send(self) -> None:
        pool = self._pool()
        if pool is None:
            return
        try:
            async with pool.connection() as conn:
                await conn.execute(_SEND, (CHANNEL, self.token))
        except (psycopg.Error, PoolClosed, PoolTimeout) as exc:
            log.debug("queue wake-up not sent (%s); consumers will poll", exc)


_HINTS: weakref.WeakKeyDictionary[AsyncConnectionPool[Any], Hint] = weakref.WeakKeyDictionary()


def hint(pool: AsyncConnectionPool[Any]) -> Hint:
    """The pool's Hint: the store, the bus and the consumers sharing a pool share one, so a
    commit in this process wakes this process's consumers without a round trip."""
    found = _HINTS.get(pool)
    if found is None:
        found = _HINTS[pool] = Hint(pool)
    return found
