"""The web form's fast intake (SPEC 4 step 1): a request is acknowledged with one INSERT,
its ticket number reserved, and a worker takes it in (identity, thread, the stored
message) later, in `open_turn`'s transaction, which opens the reserved ticket and deletes
the receipt. A reserved number is therefore always either a receipt or a ticket.

Why: the full intake transaction (identity, thread, ticket, message, outbox: a dozen
statements) costs a few milliseconds of CPU per request in the API process, which caps a
two-core machine far below the 500 form posts per second SPEC 11 asks for.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import datetime

import msgspec

from adapters.storage.postgres.rows import Conn
from fte_core import events
from fte_core.errors import StorageError
from fte_core.models import InboundMessage, Receipt

# Many receipts in one statement (and one commit): rows in arrival order. The arrays go
# in binary (`%b`): as text, each JSON message's quotes were escaped one regex
# substitution at a time, a fifth of the intake's CPU.
_KEEP_SQL = """
WITH kept AS (
    INSERT INTO receipts (ticket_number, message, access_hash, received_at)
    SELECT * FROM unnest(%(numbers)b::text[], %(messages)b::text[]::jsonb[],
                         %(access)b::bytea[], %(at)b::timestamptz[])
)
INSERT INTO outbox (topic, key, payload)
SELECT %(topic)s, key, payload
FROM unnest(%(keys)b::text[], %(events)b::bytea[]) WITH ORDINALITY AS e(key, payload, n)
ORDER BY n
"""

_RECEIPT_SQL = "SELECT message::text, access_hash FROM receipts WHERE ticket_number = %s"

# The ticket's columns come from the conversation row and the receipt: one statement that
# opens the reserved ticket, carries the receipt's token digest over and drops the
# receipt. ON CONFLICT: a concurrent copy of the same receipt opened it first.
OPEN_RESERVED_SQL = """
WITH gone AS (
    DELETE FROM receipts WHERE ticket_number = %(number)s RETURNING access_hash
), c AS (
    INSERT INTO conversations (id, customer_id, channel, status, started_at, last_message_at)
    VALUES (%(id)s, %(customer)s, %(channel)s, 'open', %(now)s, %(now)s)
)
INSERT INTO tickets AS t (number, conversation_id, customer_id, channel, status, priority,
    category, created_at, updated_at, access_hash)
VALUES (%(number)s, %(id)s, %(customer)s, %(channel)s, 'open', %(priority)s, %(category)s,
    %(now)s, %(now)s, (SELECT access_hash FROM gone))
ON CONFLICT (number) DO NOTHING
RETURNING {columns}
"""

_DECODE = msgspec.json.Decoder(InboundMessage)


class TicketNumbers:
    """Ticket numbers taken from the sequence a block at a time, so a form post is one
    statement. Unused numbers of a block are lost when the process stops (a sequence has
    gaps anyway); two API processes hand out interleaved numbers."""

    def __init__(self, block: int = 16) -> None:
        self._block = block
        self._free: list[str] = []
        self._lock = asyncio.Lock()

    async def take(self, conn: Conn) -> str:
        async with self._lock:
            if not self._free:
                cursor = await conn.execute(
                    "SELECT fte_ticket_number(nextval('ticket_number_seq'))"
                    " FROM generate_series(1, %s)",
                    (self._block,),
                )
                self._free = [row[0] for row in reversed(await cursor.fetchall())]
            return self._free.pop()


class _Pending(msgspec.Struct, frozen=True, kw_only=True):
    message: InboundMessage
    access: Callable[[str], bytes]
    key: str
    received_at: datetime
    done: asyncio.Future[Receipt]


class ReceiptWriter:
    """Group commit for the form's receipts: posts that arrive while one write is
    committing go together in the next statement, so one WAL flush serves many and the
    disk's flush time (milliseconds) bounds each post's latency, not the rate of posts. A
    post is answered only after the commit that holds its receipt: nothing acknowledged
    is lost.
    """

    def __init__(
        self,
        connect: Callable[[], AbstractAsyncContextManager[Conn]],
        *,
        writers: int = 2,
        committed: Callable[[], None] = lambda: None,
    ) -> None:
        self._connect = connect
        self._committed = committed  # told after each commit (its events are in the queue)
        self._numbers = TicketNumbers(block=64)
        self._pending: list[_Pending] = []
        self._writers = writers
        self._writing: set[asyncio.Task[None]] = set()

    async def keep(
        self,
        message: InboundMessage,
        access: Callable[[str], bytes],
        key: str,
        received_at: datetime,
    ) -> Receipt:
        done: asyncio.Future[Receipt] = asyncio.get_running_loop().create_future()
        self._pending.append(
            _Pending(message=message, access=access, key=key, received_at=received_at, done=done)
        )
        # A second write may start while the first waits for its flush (PostgreSQL then
        # flushes both at once): a post waits for one flush, not for one and a half.
        if len(self._writing) < self._writers:
            task = asyncio.create_task(self._write_all())
            self._writing.add(task)
            task.add_done_callback(self._writing.discard)
        # shielded: a post whose client went away must not cancel its neighbours' write
        return await asyncio.shield(done)

    async def _write_all(self) -> None:
        batch: list[_Pending] = []
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    receipts = await self._write(batch)
                except Exception as exc:  # noqa: BLE001 - raised in every post of the batch
                    for item in batch:
                        item.done.set_exception(exc)
                else:
                    for item, receipt in zip(batch, receipts, strict=True):
                        item.done.set_result(receipt)
                    self._committed()
        finally:
            for item in batch + self._pending:  # cancelled (shutdown) before its commit
                if not item.done.done():
                    item.done.set_exception(StorageError("intake stopped before the commit"))

    async def _write(self, batch: list[_Pending]) -> list[Receipt]:
        async with self._connect() as conn:
            numbers = [await self._numbers.take(conn) for _ in batch]
            receipts = [
                Receipt(
                    message=msgspec.structs.replace(item.message, reserved_ticket=number),
                    access_hash=item.access(number),
                )
                for item, number in zip(batch, numbers, strict=True)
            ]
            await conn.execute(
                _KEEP_SQL,
                {
                    "numbers": numbers,
                    "messages": [msgspec.json.encode(r.message).decode() for r in receipts],
                    "access": [r.access_hash for r in receipts],
                    "at": [item.received_at for item in batch],
                    "topic": events.INBOUND,
                    "keys": [item.key for item in batch],
                    "events": [
                        events.encode(
                            events.ReceivedEvent(
                                ticket_number=number,
                                channel=item.message.channel,
                                provider_message_id=item.message.provider_message_id,
                            )
                        )
                        for item, number in zip(batch, numbers, strict=True)
                    ],
                },
            )
        return receipts


async def find(conn: Conn, number: str) -> Receipt | None:
    cursor = await conn.execute(_RECEIPT_SQL, (number,))
    row = await cursor.fetchone()
    if row is None:
        return None
    access = bytes(row[1]) if row[1] is not None else None
    return Receipt(message=_DECODE.decode(row[0]), access_hash=access)
