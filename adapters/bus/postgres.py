"""The PostgreSQL queue: the event bus of the embedded default, over the `outbox` table.

A producer inserts a row (`enqueue`, inside the caller's transaction when the event must
be stored together with the data it names: the transactional outbox). Consumers claim
rows with `FOR UPDATE SKIP LOCKED`, only the oldest pending row of each (topic, key), so
one customer's events are handled in order while other keys proceed. A claim lasts the
visibility timeout; a consumer that dies leaves its rows to be claimed again when it runs
out. Every claim counts an attempt; a failure backs the row off exponentially (it stays
the head of its key, so order holds), and after `max_attempts` the row moves to
`dead_letters` with its error. An acked row is deleted. A live consumer renews the leases
of the rows it holds, so only a dead consumer's rows wait out the visibility timeout.

Caveat: ids come from an identity column, assigned at insert; two transactions inserting
for the same key at the same moment may commit in the other order, and the later id can
then be handed out first. Intake of one customer's messages is sequential in practice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec
import psycopg
from psycopg_pool import AsyncConnectionPool

from adapters.bus.retry import RetryPolicy
from adapters.bus.wake import CHANNEL, hint
from fte_core import events
from fte_core.errors import BusError
from fte_core.ports import Delivery

log = logging.getLogger(__name__)

_FLOOR_RESET = 5.0  # seconds

_INSERT = "INSERT INTO outbox (topic, key, payload) VALUES (%s, %s, %s) RETURNING id"

# Free heads among the oldest `window` pending rows: a row whose (topic, key) has no older
# pending row, not claimed, not backing off; oldest first. The window bounds the work of a
# claim when a deep backlog belongs to keys already in flight.
_CLAIM = """
WITH bound AS (
    SELECT min(id) AS lo, max(id) AS hi FROM (
        SELECT id FROM outbox
        WHERE topic = ANY(%(topics)s) AND sent_at IS NULL AND id >= %(floor)s
        ORDER BY id LIMIT %(window)s) w
),
free AS (
    SELECT o.id FROM outbox o, bound
    WHERE o.topic = ANY(%(topics)s) AND o.sent_at IS NULL
      AND o.id BETWEEN bound.lo AND bound.hi
      AND o.available_at <= now()
      AND (o.locked_until IS NULL OR o.locked_until <= now())
      AND NOT EXISTS (
          SELECT 1 FROM outbox p
          WHERE p.topic = o.topic AND p.key = o.key AND p.id < o.id AND p.sent_at IS NULL)
    ORDER BY o.id
    LIMIT %(limit)s
    FOR UPDATE OF o SKIP LOCKED
)
UPDATE outbox o
SET attempts = o.attempts + 1, claimed_by = %(me)s,
    locked_until = now() + make_interval(secs => %(visibility)s)
FROM free, bound WHERE o.id = free.id
RETURNING o.id, o.topic, o.key, o.payload, o.attempts, bound.lo
"""

_DEAD = """
WITH gone AS (
    DELETE FROM outbox WHERE id = %(id)s AND claimed_by = %(me)s
    RETURNING id, topic, key, payload, attempts
)
INSERT INTO dead_letters (outbox_id, topic, key, payload, attempts, error)
SELECT id, topic, key, payload, attempts, %(error)s FROM gone
"""

_BACK_OFF = """
UPDATE outbox SET claimed_by = NULL, locked_until = NULL, last_error = %(error)s,
    available_at = now() + make_interval(secs => %(delay)s)
WHERE id = %(id)s AND claimed_by = %(me)s
"""


async def enqueue(conn: psycopg.AsyncConnection[Any], topic: str, key: str, payload: bytes) -> int:
    """Insert one event row on `conn`, in whatever transaction the caller has open (so a
    message and its event commit together). Returns the row id, the event's stable id.
    Driver errors propagate as psycopg errors: the caller owns the transaction, and pokes
    the pool's `wake.hint` once it has committed (or consumers find the row by polling)."""
    cursor = await conn.execute(_INSERT, (topic, key, payload))
    row = await cursor.fetchone()
    if row is None:
        raise BusError("outbox insert returned no id")
    return int(row[0])


async def enqueue_many(
    conn: psycopg.AsyncConnection[Any], rows: Sequence[tuple[str, str, bytes]]
) -> None:
    """Insert many (topic, key, payload) rows in one round trip, in order (poke as above)."""
    async with conn.cursor() as cursor:
        await cursor.executemany(
            "INSERT INTO outbox (topic, key, payload) VALUES (%s, %s, %s)", rows
        )


class PostgresBus:
    """EventBus over the pool: each publish is its own small transaction."""

    def __init__(self, pool: AsyncConnectionPool[Any]) -> None:
        self._pool = pool
        self._hint = hint(pool)

    async def publish(self, topic: str, key: str, event: msgspec.Struct) -> None:
        try:
            async with self._pool.connection() as conn:
                await enqueue(conn, topic, key, events.encode(event))
        except psycopg.Error as exc:
            raise BusError(f"publish to {topic}: {exc}") from exc
        self._hint.poke()

    def consumer(
        self,
        topics: Iterable[str],
        *,
        retry: RetryPolicy | None = None,
        visibility_timeout: float = 60.0,
    ) -> PostgresConsumer:
        return PostgresConsumer(
            self._pool, topics, retry=retry, visibility_timeout=visibility_timeout
        )


class PostgresConsumer:
    def __init__(
        self,
        pool: AsyncConnectionPool[Any],
        topics: Iterable[str],
        *,
        retry: RetryPolicy | None = None,
        visibility_timeout: float = 60.0,
        idle_poll: float = 1.0,
        window: int = 1000,
    ) -> None:
        self._pool = pool
        self._topics = list(topics)
        self._retry = retry or RetryPolicy()
        self._visibility = visibility_timeout
        self._idle_poll = idle_poll  # re-check this often even without a notification
        self._window = window
        self._acks: list[int] = []
        self._ack_flush: asyncio.Future[None] | None = None
        self._lowest = 0
        self._floor_reset = time.monotonic()
        self._me = uuid.uuid4()
        self._hint = hint(pool)
        self._wake: asyncio.Event | None = None  # set by a poke here or a NOTIFY from elsewhere
        self._listener: asyncio.Task[None] | None = None
        self._held: set[int] = set()  # claimed, no outcome yet: their leases are renewed
        self._renewer: asyncio.Task[None] | None = None
        self._closed = False

    async def receive(self, limit: int, max_wait: float) -> list[Delivery]:
        deadline = time.monotonic() + max_wait
        while not self._closed:
            wake = await self._listen()
            wake.clear()  # before the claim: a row committed during it wakes the wait below
            taken = await self._claim(limit)
            if taken:
                self._held.update(int(d.id) for d in taken)
                if self._renewer is None:
                    self._renewer = asyncio.create_task(self._renew_leases())
                return taken
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), min(remaining, self._idle_poll))
        return []

    async def ack(self, delivery: Delivery) -> None:
        """Acks arriving together share one DELETE (a group commit); each returns once the
        statement holding its row has committed."""
        self._held.discard(int(delivery.id))
        self._acks.append(int(delivery.id))
        if self._ack_flush is None:
            self._ack_flush = asyncio.ensure_future(self._flush_acks())
        await asyncio.shield(self._ack_flush)

    async def _flush_acks(self) -> None:
        await asyncio.sleep(0)  # let the acks of this turn of the loop join
        ids, self._acks = self._acks, []
        self._ack_flush = None
        await self._execute(
            "DELETE FROM outbox WHERE id = ANY(%(ids)s) AND claimed_by = %(me)s",
            {"ids": ids, "me": self._me},
            f"ack {len(ids)} event(s)",
        )

    async def retry(self, delivery: Delivery, error: str) -> bool:
        self._held.discard(int(delivery.id))
        params = {"id": int(delivery.id), "me": self._me, "error": error}
        if self._retry.exhausted(delivery.attempts):
            await self._execute(_DEAD, params, f"dead-letter {delivery.id}")
            return True
        params["delay"] = self._retry.delay(delivery.attempts)
        await self._execute(_BACK_OFF, params, f"retry {delivery.id}")
        return False

    async def lag(self) -> int | None:
        try:
            async with self._pool.connection() as conn:
                cursor = await conn.execute(
                    "SELECT count(*) FROM outbox WHERE topic = ANY(%s) AND sent_at IS NULL",
                    (self._topics,),
                )
                row = await cursor.fetchone()
        except psycopg.Error as exc:
            raise BusError(f"queue lag: {exc}") from exc
        return int(row[0]) if row else None

    async def close(self) -> None:
        """Claimed rows not acked stay claimed until their visibility timeout, as after a
        crash; a clean stop drains its work first (see service.worker)."""
        self._closed = True
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
            self._renewer = None
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None
        if self._wake is not None:
            self._hint.forget(self._wake)
            self._wake = None

    async def _renew_leases(self) -> None:
        """While this consumer lives, its claims do not expire however long a handler
        takes (a model call, retries): the visibility timeout only frees the rows of a
        consumer that died."""
        while True:
            await asyncio.sleep(self._visibility / 3)
            if not self._held:
                continue
            try:
                await self._execute(
                    "UPDATE outbox SET locked_until = now() + make_interval(secs => %(v)s)"
                    " WHERE id = ANY(%(ids)s) AND claimed_by = %(me)s",
                    {"v": self._visibility, "ids": list(self._held), "me": self._me},
                    "renew leases",
                )
            except BusError as exc:
                log.warning("could not renew %d lease(s): %s", len(self._held), exc)

    async def _claim(self, limit: int) -> list[Delivery]:
        params = {
            "topics": self._topics,
            "limit": limit,
            "me": self._me,
            "visibility": self._visibility,
            "window": self._window,
            "floor": self._floor(),
        }
        try:
            async with self._pool.connection() as conn:
                cursor = await conn.execute(_CLAIM, params)
                rows = await cursor.fetchall()
        except psycopg.Error as exc:
            raise BusError(f"claim from {self._topics}: {exc}") from exc
        rows.sort(key=lambda r: int(r[0]))
        if rows:
            self._lowest = int(rows[0][5])
        taken: list[Delivery] = []
        for id_, topic, key, payload, attempts, _ in rows:
            delivery = Delivery(
                id=str(id_), topic=topic, key=key, payload=bytes(payload), attempts=attempts
            )
            if attempts > self._retry.max_attempts:
                # Handed out max_attempts times and never acked nor failed: each consumer
                # died on it (a poison message that kills the process). Stop the loop.
                await self.retry(delivery, f"no outcome after {attempts - 1} deliveries")
                continue
            taken.append(delivery)
        return taken

    def _floor(self) -> int:
        """Claims scan from the oldest pending row seen last time, not from the start: the
        rows acked below it are dead index entries a scan would wade through until vacuum.
        Every few seconds the scan starts from 0 again, for a row committed late with a
        lower id (ids are assigned at insert, not at commit)."""
        now = time.monotonic()
        if now - self._floor_reset >= _FLOOR_RESET:
            self._floor_reset = now
            self._lowest = 0
        return self._lowest

    async def _listen(self) -> asyncio.Event:
        """The event this consumer waits on; the first call starts listening (a failure to
        then propagates, as any claim's would), later ones re-listen in the background."""
        if self._wake is None:
            self._wake = self._hint.waiter()
        if self._listener is None:
            conn = await listen(self._pool)
            self._listener = asyncio.create_task(self._relay_notifies(conn, self._wake))
        return self._wake

    async def _relay_notifies(
        self, conn: psycopg.AsyncConnection[Any], wake: asyncio.Event
    ) -> None:
        """Set `wake` on every NOTIFY from another process (this process's own writers set
        it directly); a lost connection is replaced after a poll interval."""
        while True:
            try:
                async for note in conn.notifies():
                    if note.payload != self._hint.token:
                        wake.set()
            except psycopg.Error as exc:
                log.warning("outbox listener lost (%s); reconnecting", exc)
            finally:
                await unlisten(self._pool, conn)
            conn = await self._listen_again()

    async def _listen_again(self) -> psycopg.AsyncConnection[Any]:
        while True:
            await asyncio.sleep(self._idle_poll)
            try:
                return await listen(self._pool)
            except BusError as exc:
                log.warning("outbox listener: %s", exc)

    async def _execute(self, query: str, params: dict[str, object], what: str) -> None:
        try:
            async with self._pool.connection() as conn:
                await conn.execute(query, params)
        except psycopg.Error as exc:
            raise BusError(f"{what}: {exc}") from exc


async def listen(pool: AsyncConnectionPool[Any]) -> psycopg.AsyncConnection[Any]:
    """A pooled connection listening for new outbox rows (held until `unlisten`)."""
    conn: psycopg.AsyncConnection[Any] = await pool.getconn()
    try:
        await conn.execute(f"LISTEN {CHANNEL}")
    except psycopg.Error as exc:
        await pool.putconn(conn)
        raise BusError(f"listen on {CHANNEL}: {exc}") from exc
    return conn


async def unlisten(pool: AsyncConnectionPool[Any], conn: psycopg.AsyncConnection[Any]) -> None:
    try:
        await conn.execute("UNLISTEN *")
    except psycopg.Error as exc:
        log.debug("unlisten failed (%s); the pool discards the connection", exc)
    await pool.putconn(conn)


async def wait_for_notify(conn: psycopg.AsyncConnection[Any], seconds: float) -> bool:
    """Wait up to `seconds` for a new-row notification; False if the connection broke."""
    try:
        async for _ in conn.notifies(timeout=seconds, stop_after=1):
            break
    except psycopg.Error as exc:
        log.warning("outbox listener lost (%s); reconnecting", exc)
        return False
    return True
