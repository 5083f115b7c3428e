"""PostgresStore: the CrmStore port over psycopg 3 (parameterised SQL, no ORM).

It behaves exactly like fte_core.testing.store.InMemoryStore; the contract suite in
tests/integration runs against both. Concurrency is handled by the database: unique
constraints plus INSERT ... ON CONFLICT make identity resolution and message storage
idempotent, and a row lock on the customer serialises threading per customer.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta
from typing import Any

import msgspec
from psycopg_pool import AsyncConnectionPool

from adapters.bus.postgres import enqueue
from adapters.bus.wake import hint
from adapters.storage.postgres import lifecycle, receipts, rows
from adapters.storage.postgres.pool import connection
from adapters.storage.postgres.rows import Conn, Row
from fte_core import events
from fte_core.clock import Clock, as_utc, utc_now
from fte_core.errors import InvalidTransition, NotFound, StorageError
from fte_core.identity import (
    canonical_identifiers,
    clean_name,
    identifier_key,
    identifiers_for,
    normalize_identifier,
    proven_identifiers,
    sender_keys,
    ticket_references,
    with_proven,
)
from fte_core.models import (
    Channel,
    Conversation,
    Customer,
    CustomerResolution,
    DecisionRecord,
    DeliveryStatus,
    Direction,
    HistoryItem,
    Identifier,
    IdentifierKind,
    InboundMessage,
    MergeCandidate,
    Owner,
    Priority,
    Receipt,
    StoredMessage,
    Thread,
    Ticket,
    TicketStatus,
    can_transition,
)
from fte_core.ports import DeliveryTarget, OutboundDraft, Turn

log = logging.getLogger(__name__)

_RESOLVE_ATTEMPTS = 8

_FIND_INBOUND_SQL = f"""SELECT {rows.MESSAGE_COLUMNS} FROM messages m WHERE channel = %s
    AND provider_message_id = %s AND direction = 'inbound'"""

_CONTACT_COUNT_SQL = (
    "SELECT count(*) FROM messages WHERE customer_id = %s AND direction = 'inbound'"
)

# The reply is inserted only for an inbound message, once (the unique index on
# in_reply_to); the ticket changes only when the reply is new: it moves when the
# lifecycle allows it (`moves_from` is empty without a move), takes the draft's tags and
# priority, and the conversation mirrors the ticket's status. The events it carries (its
# fte.outbound event, its metrics) go to the outbox in order, also only with a new reply.
_SAVE_OUTBOUND_SQL = f"""
WITH reply AS (
    INSERT INTO messages AS m (id, conversation_id, customer_id, channel, direction, author,
        in_reply_to, content, delivery_status, latency_ms, prompt_tokens, completion_tokens,
        cost_usd, record, created_at)
    SELECT %(id)s, c.id, c.customer_id, %(channel)s, 'outbound', 'agent', i.id, %(content)s,
           'queued', %(latency)s, %(prompt)s, %(completion)s, %(cost)s, %(record)s::jsonb,
           %(at)s
    FROM conversations c
    JOIN messages i ON i.id = %(inbound)s AND i.direction = 'inbound'
    WHERE c.id = %(conversation)s
    ON CONFLICT (in_reply_to) WHERE direction = 'outbound' AND author = 'agent' DO NOTHING
    RETURNING {rows.MESSAGE_COLUMNS}
), processed AS (
    UPDATE messages SET processed_at = %(at)s
    WHERE id = %(inbound)s AND EXISTS (SELECT 1 FROM reply)
), changed AS (
    UPDATE tickets SET
        status = CASE WHEN status = ANY(%(moves_from)s::text[]) THEN %(status)s::text
                      ELSE status END,
        priority = coalesce(%(priority)s::text, priority),
        tags = ARRAY(SELECT DISTINCT unnest(tags || %(tags)s::text[]) ORDER BY 1),
        acknowledged_at = greatest(acknowledged_at, %(acknowledged)s::timestamptz),
        updated_at = CASE WHEN status = ANY(%(moves_from)s::text[])
                            OR %(priority)s::text IS NOT NULL OR NOT tags @> %(tags)s::text[]
                          THEN %(at)s ELSE updated_at END
    WHERE conversation_id = (SELECT conversation_id FROM reply)
      AND (status = ANY(%(moves_from)s::text[]) OR %(priority)s::text IS NOT NULL
           OR NOT tags @> %(tags)s::text[] OR %(acknowledged)s::timestamptz IS NOT NULL)
    RETURNING conversation_id, status
), mirrored AS (
    UPDATE conversations c SET status = changed.status
    FROM changed WHERE c.id = changed.conversation_id
), queued AS (
    INSERT INTO outbox (topic, key, payload)
    SELECT e.topic, c.customer_id::text, e.payload
    FROM reply JOIN conversations c ON c.id = reply.conversation_id,
         unnest(%(topics)s::text[], %(payloads)s::bytea[])
             WITH ORDINALITY AS e (topic, payload, ord)
    ORDER BY e.ord
)
SELECT * FROM reply
"""


class _IdentifierRaceError(Exception):
    """A concurrent writer claimed an identifier (or stored the same message) between our
    read and our insert: the transaction starts over and then sees it."""


class _TurnInput(msgspec.Struct, frozen=True, kw_only=True):
    """open_turn's arguments, validated before the transaction starts."""

    message: InboundMessage
    received_at: datetime
    identifiers: list[Identifier]
    name: str | None
    now: datetime
    window: timedelta
    category: str | None
    priority: Priority
    proven: list[str]  # identifier keys of the addresses the channel proved
    announce: bool  # queue a new message for the workers in the same transaction
    access: Callable[[str], bytes] | None  # the ticket's token digest, by number
    claim: timedelta | None  # the worker's lease on the message, taken in the same transaction


class PostgresStore:
    def __init__(self, pool: AsyncConnectionPool, *, clock: Clock = utc_now) -> None:
        self._pool = pool
        self._clock = clock
        self._hint = hint(pool)  # poked after each commit that queued an event
        self._receipts = receipts.ReceiptWriter(self._conn, committed=self._hint.poke)

    def _conn(self) -> AbstractAsyncContextManager[Conn]:
        return connection(self._pool, "PostgreSQL")

    async def _one(self, sql: str, params: Sequence[Any] | dict[str, Any]) -> Row | None:
        async with self._conn() as conn:
            cursor = await conn.execute(sql, params)
            return await cursor.fetchone()

    async def _all(self, sql: str, params: Sequence[Any] | dict[str, Any]) -> list[Row]:
        async with self._conn() as conn:
            cursor = await conn.execute(sql, params)
            return await cursor.fetchall()

    # customers ---------------------------------------------------------------------------

    async def resolve_customer(
        self, identifiers: Sequence[Identifier], name: str | None
    ) -> CustomerResolution:
        wanted = canonical_identifiers(identifiers)
        async with self._conn() as conn:
            for _ in range(_RESOLVE_ATTEMPTS):
                try:
                    async with conn.transaction():
                        return await self._resolve_once(conn, wanted, clean_name(name))
                except _IdentifierRaceError:
                    log.debug("identifier claimed concurrently; resolving again")
        raise StorageError("could not resolve customer under contention")

    async def _resolve_once(
        self, conn: Conn, wanted: list[Identifier], name: str | None
    ) -> CustomerResolution:
        owned = await self._owners(conn, wanted)
        owners = [owner for _, owner in owned if owner is not None]
        if not owners:
            customer = Customer(
                id=str(uuid.uuid4()), name=name, identifiers=tuple(wanted), created_at=self._clock()
            )
            customer_id = uuid.UUID(customer.id)
            await conn.execute(
                "INSERT INTO customers (id, name, created_at) VALUES (%s, %s, %s)",
                (customer_id, name, customer.created_at),
            )
            # Linked in `wanted` order, so ORDER BY id reads them back as built here.
            await self._link(conn, customer_id, wanted)
            return CustomerResolution(
                customer=msgspec.structs.replace(
                    customer, created_at=rows.utc(customer.created_at)
                ),
                created=True,
            )
        primary = owners[0]
        linked = [i for i, owner in owned if owner is None]
        await self._link(conn, primary, linked)
        candidates = [
            MergeCandidate(customer_id=str(primary), other_customer_id=str(owner), identifier=i)
            for i, owner in owned
            if owner is not None and owner != primary
        ]
        for candidate in candidates:
            await conn.execute(
                """INSERT INTO merge_candidates (customer_id, other_customer_id, kind, value)
                   VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING""",
                (
                    primary,
                    uuid.UUID(candidate.other_customer_id),
                    candidate.identifier.kind.value,
                    candidate.identifier.value,
                ),
            )
        return CustomerResolution(
            customer=await self._name_and_load(conn, primary, name),
            created=False,
            linked=tuple(linked),
            merge_candidates=tuple(candidates),
        )

    @staticmethod
    async def _owners(
        conn: Conn, wanted: list[Identifier]
    ) -> list[tuple[Identifier, uuid.UUID | None]]:
        cursor = await conn.execute(
            """SELECT kind, value, customer_id FROM customer_identifiers
               WHERE (kind, value) IN (SELECT * FROM unnest(%s::text[], %s::text[]))""",
            ([i.kind.value for i in wanted], [i.value for i in wanted]),
        )
        found = {(row[0], row[1]): row[2] for row in await cursor.fetchall()}
        return [(i, found.get((i.kind.value, i.value))) for i in wanted]

    @staticmethod
    async def _link(conn: Conn, customer_id: uuid.UUID, identifiers: list[Identifier]) -> None:
        """Attach identifiers; if another transaction claimed one first, start over."""
        if not identifiers:
            return
        cursor = await conn.execute(
            """INSERT INTO customer_identifiers (customer_id, kind, value)
               SELECT %s, kind, value
               FROM unnest(%s::text[], %s::text[]) WITH ORDINALITY AS i (kind, value, ord)
               ORDER BY ord
               ON CONFLICT (kind, value) DO NOTHING
               RETURNING id""",
            (customer_id, [i.kind.value for i in identifiers], [i.value for i in identifiers]),
        )
        if len(await cursor.fetchall()) != len(identifiers):
            raise _IdentifierRaceError

    @classmethod
    async def _name_and_load(cls, conn: Conn, customer_id: uuid.UUID, name: str | None) -> Customer:
        """A first known name is kept, never overwritten; one round trip either way."""
        if name is None:
            return await cls._load_customer(conn, customer_id)
        cursor = await conn.execute(
            f"""UPDATE customers c SET name = coalesce(c.name, %s) WHERE c.id = %s
                RETURNING {rows.CUSTOMER_COLUMNS}""",
            (name, customer_id),
        )
        row = await cursor.fetchone()
        if row is None:
            raise NotFound(f"customer {customer_id}")
        return rows.customer(row)

    @staticmethod
    async def _load_customer(conn: Conn, customer_id: uuid.UUID) -> Customer:
        cursor = await conn.execute(
            f"SELECT {rows.CUSTOMER_COLUMNS} FROM customers c WHERE c.id = %s",
            (customer_id,),
        )
        row = await cursor.fetchone()
        if row is None:
            raise NotFound(f"customer {customer_id}")
        return rows.customer(row)

    async def get_customer(self, customer_id: str) -> Customer | None:
        key = rows.as_uuid(customer_id)
        if key is None:
            return None
        async with self._conn() as conn:
            try:
                return await self._load_customer(conn, key)
            except NotFound:
                return None

    async def find_customer(self, identifier: Identifier) -> Customer | None:
        canonical = normalize_identifier(identifier)
        row = await self._one(
            "SELECT customer_id FROM customer_identifiers WHERE kind = %s AND value = %s",
            (canonical.kind.value, canonical.value),
        )
        return await self.get_customer(str(row[0])) if row else None

    async def merge_candidates(self, customer_id: str) -> list[MergeCandidate]:
        key = rows.as_uuid(customer_id)
        if key is None:
            return []
        found = await self._all(
            """SELECT customer_id, other_customer_id, kind, value FROM merge_candidates
               WHERE customer_id = %s OR other_customer_id = %s ORDER BY id""",
            (key, key),
        )
        return [
            MergeCandidate(
                customer_id=str(row[0]),
                other_customer_id=str(row[1]),
                identifier=Identifier(IdentifierKind(row[2]), row[3]),
            )
            for row in found
        ]

    # conversations and tickets -------------------------------------------------------------

    async def thread(
        self,
        customer_id: str,
        channel: Channel,
        now: datetime,
        window: timedelta,
        *,
        category: str | None = None,
        priority: Priority = Priority.NORMAL,
    ) -> Thread:
        now = as_utc(now, "now")
        key = rows.as_uuid(customer_id)
        if key is None:
            raise NotFound(f"customer {customer_id}")
        async with self._conn() as conn, conn.transaction():
            # Serialises threading per customer: two messages arriving together must not
            # open two conversations.
            cursor = await conn.execute("SELECT 1 FROM customers WHERE id = %s FOR UPDATE", (key,))
            if await cursor.fetchone() is None:
                raise NotFound(f"customer {customer_id}")
            return await self._thread_locked(conn, key, channel, now, window, category, priority)

    async def _thread_locked(
        self,
        conn: Conn,
        customer_id: uuid.UUID,
        channel: Channel,
        now: datetime,
        window: timedelta,
        category: str | None,
        priority: Priority,
        proven: list[str] | None = None,
    ) -> Thread:
        """`thread` once the caller holds the customer's row lock; with `proven`, only a
        conversation in which one of those addresses wrote is resumed."""
        cursor = await conn.execute(
            f"""SELECT {rows.TICKET_COLUMNS} FROM conversations c
                JOIN tickets t ON t.conversation_id = c.id
                WHERE c.customer_id = %(customer)s AND c.last_message_at >= %(since)s
                  AND t.status <> 'closed'
                  AND (%(proven)s::text[] IS NULL OR EXISTS (
                      SELECT 1 FROM messages m WHERE m.conversation_id = c.id
                        AND m.direction = 'inbound' AND m.sender_ids && %(proven)s))
                ORDER BY c.last_message_at DESC LIMIT 1""",
            {"customer": customer_id, "since": now - window, "proven": proven},
        )
        row = await cursor.fetchone()
        if row is None:
            return await self._open_thread(conn, customer_id, channel, now, category, priority)
        return await self._resume(conn, rows.ticket(row), now)

    async def _resume(self, conn: Conn, ticket: Ticket, now: datetime) -> Thread:
        reopened = ticket.status is TicketStatus.RESOLVED
        if reopened:
            cursor = await conn.execute(
                f"""UPDATE tickets t SET status = 'open', updated_at = %s WHERE number = %s
                    RETURNING {rows.TICKET_COLUMNS}""",
                (now, ticket.number),
            )
            row = await rows.fetch_one(cursor, "close ticket")
            ticket = rows.ticket(row)
        cursor = await conn.execute(
            f"""UPDATE conversations c
                SET status = %s, last_message_at = greatest(c.last_message_at, %s)
                FROM tickets t WHERE c.id = %s AND t.conversation_id = c.id
                RETURNING {rows.CONVERSATION_COLUMNS}""",
            (ticket.status.value, now, uuid.UUID(ticket.conversation_id)),
        )
        row = await rows.fetch_one(cursor, "conversation status")
        return Thread(
            conversation=rows.conversation(row), ticket=ticket, resumed=True, reopened=reopened
        )

    @staticmethod
    async def _open_thread(
        conn: Conn,
        customer_id: uuid.UUID,
        channel: Channel,
        now: datetime,
        category: str | None,
        priority: Priority,
        *,
        reserved: str | None = None,
    ) -> Thread:
        """With `reserved`, the ticket intake's receipt promised (the receipt goes)."""
        conversation_id = uuid.uuid4()
        params = {
            "id": conversation_id,
            "customer": customer_id,
            "channel": channel.value,
            "now": now,
            "priority": priority.value,
            "category": category,
            "number": reserved,
        }
        # One statement for both rows: the ticket's foreign key is checked at its end.
        sql = (
            receipts.OPEN_RESERVED_SQL.format(columns=rows.TICKET_COLUMNS)
            if reserved
            else (
                f"""WITH c AS (
                    INSERT INTO conversations (id, customer_id, channel, status, started_at,
                        last_message_at)
                    VALUES (%(id)s, %(customer)s, %(channel)s, 'open', %(now)s, %(now)s))
                INSERT INTO tickets AS t (conversation_id, customer_id, channel, status,
                    priority, category, created_at, updated_at)
                VALUES (%(id)s, %(customer)s, %(channel)s, 'open', %(priority)s, %(category)s,
                    %(now)s, %(now)s)
                RETURNING {rows.TICKET_COLUMNS}"""
            )
        )
        cursor = await conn.execute(sql, params)
        row = await cursor.fetchone()
        if row is None:  # a concurrent copy of the same receipt opened the ticket first
            raise _IdentifierRaceError
        ticket = rows.ticket(row)
        conversation = Conversation(
            id=str(conversation_id),
            customer_id=str(customer_id),
            channel=channel,
            status=TicketStatus.OPEN,
            started_at=now,
            last_message_at=now,
            ticket_number=ticket.number,
        )
        return Thread(conversation=conversation, ticket=ticket, resumed=False)

    async def get_ticket(self, number: str) -> Ticket | None:
        row = await self._one(
            f"SELECT {rows.TICKET_COLUMNS} FROM tickets t WHERE number = %s", (number,)
        )
        return rows.ticket(row) if row else None

    async def update_ticket(
        self,
        number: str,
        *,
        status: TicketStatus | None = None,
        priority: Priority | None = None,
        escalation_reason: str | None = None,
        urgency: Priority | None = None,
        owner: Owner | None = None,
        assignee: str | None = None,
        tags: Sequence[str] = (),
    ) -> Ticket:
        async with self._conn() as conn, conn.transaction():
            cursor = await conn.execute(
                "SELECT status FROM tickets WHERE number = %s FOR UPDATE", (number,)
            )
            row = await cursor.fetchone()
            if row is None:
                raise NotFound(f"ticket {number}")
            current = TicketStatus(row[0])
            if status is not None and not can_transition(current, status):
                raise InvalidTransition(f"ticket {number}: {current} -> {status}")
            cursor = await conn.execute(
                f"""UPDATE tickets t SET status = coalesce(%s, status),
                        priority = coalesce(%s, priority),
                        escalation_reason = coalesce(%s, escalation_reason),
                        urgency = coalesce(%s, urgency), owner = coalesce(%s, owner),
                        assignee = coalesce(%s, assignee),
                        tags = ARRAY(SELECT DISTINCT unnest(tags || %s::text[]) ORDER BY 1),
                        updated_at = %s
                    WHERE number = %s RETURNING {rows.TICKET_COLUMNS}""",
                (
                    status.value if status else None,
                    priority.value if priority else None,
                    escalation_reason,
                    urgency.value if urgency else None,
                    owner.value if owner else None,
                    assignee,
                    list(tags),
                    self._clock(),
                    number,
                ),
            )
            updated = await rows.fetch_one(cursor, "ticket update")
            ticket = rows.ticket(updated)
            await conn.execute(
                "UPDATE conversations SET status = %s WHERE id = %s",
                (ticket.status.value, uuid.UUID(ticket.conversation_id)),
            )
            return ticket

    async def get_conversation(self, conversation_id: str) -> Conversation | None:
        key = rows.as_uuid(conversation_id)
        if key is None:
            return None
        row = await self._one(
            f"""SELECT {rows.CONVERSATION_COLUMNS} FROM conversations c
                JOIN tickets t ON t.conversation_id = c.id WHERE c.id = %s""",
            (key,),
        )
        return rows.conversation(row) if row else None

    # intake ------------------------------------------------------------------------------

    async def open_turn(
        self,
        message: InboundMessage,
        identifiers: Sequence[Identifier],
        name: str | None,
        now: datetime,
        window: timedelta,
        *,
        category: str | None = None,
        priority: Priority = Priority.NORMAL,
        announce: bool = False,
        access: Callable[[str], bytes] | None = None,
        claim: timedelta | None = None,
    ) -> Turn:
        received_at = as_utc(message.received_at, "received_at")
        turn = _TurnInput(
            message=message,
            received_at=received_at,
            identifiers=canonical_identifiers(identifiers),
            name=clean_name(name),
            now=as_utc(now, "now"),
            window=window,
            category=category,
            priority=priority,
            proven=[identifier_key(i) for i in proven_identifiers(message)],
            announce=announce,
            access=access,
            claim=claim,
        )
        async with self._conn() as conn:
            for _ in range(_RESOLVE_ATTEMPTS):
                try:
                    # Pipeline mode: BEGIN, the row lock and other statements whose result
                    # is not read go out with the next query instead of a round trip each.
                    async with conn.pipeline(), conn.transaction():
                        opened = await self._open_turn_once(conn, turn)
                    if announce and opened.created:
                        self._hint.poke()
                    return opened
                except _IdentifierRaceError:
                    log.debug("identifier or message stored concurrently; taking it in again")
        raise StorageError("could not take the message in under contention")

    async def _open_turn_once(self, conn: Conn, turn: _TurnInput) -> Turn:
        message = turn.message
        # Sent with the identity lookup (one round trip). Read before the customer lock: a
        # concurrent delivery storing the message meanwhile makes our insert find it taken,
        # and the turn starts over.
        stored = await conn.execute(
            _FIND_INBOUND_SQL, (message.channel.value, message.provider_message_id)
        )
        resolution = await self._resolve_once(conn, turn.identifiers, turn.name)
        key = uuid.UUID(resolution.customer.id)
        if not resolution.created:  # a new customer is invisible to other transactions
            await conn.execute("SELECT 1 FROM customers WHERE id = %s FOR UPDATE", (key,))
        found = await stored.fetchone()
        existing = rows.message(found) if found else None
        await self._mark_proven(conn, turn)
        resolution = with_proven(resolution, proven_identifiers(message))
        refused = None
        if existing is None:
            thread, refused = await self._choose_thread(conn, key, turn)
        else:
            thread = await self._thread_of(conn, existing)
        if thread.ticket.status is TicketStatus.PENDING:
            thread = await self._reopen_pending(conn, thread)
        if existing is None:
            row = await self._insert_inbound(
                conn,
                message,
                turn.received_at,
                key,
                uuid.UUID(thread.conversation.id),
                senders=[identifier_key(i) for i in turn.identifiers],
                proven=turn.proven,
            )
            if row is None:  # a concurrent delivery of the same message committed first
                raise _IdentifierRaceError
            inbound, created = rows.message(row), True
            if turn.announce:
                await enqueue(
                    conn,
                    events.INBOUND,
                    resolution.customer.id,
                    events.encode(
                        events.InboundEvent(
                            message_id=inbound.id,
                            channel=message.channel,
                            provider_message_id=message.provider_message_id,
                        )
                    ),
                )
        else:
            inbound, created = existing, False
        if turn.access is not None:  # pipelined: no round trip of its own
            number = thread.ticket.number
            await conn.execute(
                "UPDATE tickets SET access_hash = %s WHERE number = %s",
                (turn.access(number), number),
            )
        cursor = await conn.execute(_CONTACT_COUNT_SQL, (key,))
        count = await rows.fetch_one(cursor, "contact count")
        claimed = turn.claim is not None and await lifecycle.claim(
            conn, inbound.id, turn.now, turn.claim
        )
        return Turn(
            resolution=resolution,
            thread=thread,
            inbound=inbound,
            created=created,
            contact_count=int(count[0]),
            refused_ticket=refused,
            claimed=claimed,
        )

    @staticmethod
    async def _mark_proven(conn: Conn, turn: _TurnInput) -> None:
        if not turn.proven or turn.message.verified_by is None:
            return
        await conn.execute(
            """UPDATE customer_identifiers SET verified_by = coalesce(verified_by, %s)
               WHERE kind || ':' || value = ANY(%s::text[])""",
            (turn.message.verified_by.value, turn.proven),
        )

    async def _choose_thread(
        self, conn: Conn, customer_id: uuid.UUID, turn: _TurnInput
    ) -> tuple[Thread, str | None]:
        """The ticket this message continues, and a quoted ticket it may not join.

        A ticket is joined only by a message whose proven address wrote in it before, or
        that carries the ticket's access token: a claimed address or a quoted number
        alone opens a new ticket and reveals nothing of the other one.
        """
        message = turn.message
        quoted = ticket_references(message.subject, message.text)
        if message.reserved_ticket is not None:
            if quoted:
                await self._record_ticket_claim(conn, customer_id, turn, quoted[0])
            return await self._open_thread(
                conn,
                customer_id,
                message.channel,
                turn.now,
                turn.category,
                turn.priority,
                reserved=message.reserved_ticket,
            ), quoted[0] if quoted else None
        wanted = ((message.ticket_access,) if message.ticket_access else ()) + quoted
        for number in dict.fromkeys(wanted):
            cursor = await conn.execute(
                f"""SELECT {rows.TICKET_COLUMNS} FROM tickets t
                    WHERE t.number = %(number)s AND t.customer_id = %(customer)s
                      AND t.status <> 'closed'
                      AND (t.number = %(access)s OR EXISTS (
                          SELECT 1 FROM messages m WHERE m.conversation_id = t.conversation_id
                            AND m.direction = 'inbound' AND m.sender_ids && %(proven)s))""",
                {
                    "number": number,
                    "customer": customer_id,
                    "access": message.ticket_access,
                    "proven": turn.proven,
                },
            )
            row = await cursor.fetchone()
            if row is not None:
                return await self._resume(conn, rows.ticket(row), turn.now), None
        if quoted:
            await self._record_ticket_claim(conn, customer_id, turn, quoted[0])
            return await self._open_thread(
                conn, customer_id, message.channel, turn.now, turn.category, turn.priority
            ), quoted[0]
        return await self._thread_locked(
            conn,
            customer_id,
            message.channel,
            turn.now,
            turn.window,
            turn.category,
            turn.priority,
            turn.proven,
        ), None

    @staticmethod
    async def _record_ticket_claim(
        conn: Conn, customer_id: uuid.UUID, turn: _TurnInput, number: str
    ) -> None:
        """Someone quoted a ticket they may not join: if it is another customer's, an
        operator decides whether they are the same person."""
        first = turn.identifiers[0]
        await conn.execute(
            """INSERT INTO merge_candidates (customer_id, other_customer_id, kind, value)
               SELECT %s, t.customer_id, %s, %s FROM tickets t
               WHERE t.number = %s AND t.customer_id <> %s
               ON CONFLICT DO NOTHING""",
            (customer_id, first.kind.value, first.value, number, customer_id),
        )

    @staticmethod
    async def _thread_of(conn: Conn, message: StoredMessage) -> Thread:
        cursor = await conn.execute(
            f"""SELECT {rows.CONVERSATION_COLUMNS}, {rows.TICKET_COLUMNS} FROM conversations c
                JOIN tickets t ON t.conversation_id = c.id WHERE c.id = %s""",
            (uuid.UUID(message.conversation_id),),
        )
        # a message's conversation and ticket are never deleted alone
        row = await rows.fetch_one(cursor, "message's ticket")
        conversation, ticket = rows.conversation_and_ticket(row)
        return Thread(conversation=conversation, ticket=ticket, resumed=True)

    async def _reopen_pending(self, conn: Conn, thread: Thread) -> Thread:
        """The customer wrote again while we waited for them: the ticket is open again."""
        cursor = await conn.execute(
            f"""WITH t AS (
                    UPDATE tickets t SET status = 'open', updated_at = %s
                    WHERE number = %s RETURNING {rows.TICKET_COLUMNS})
                UPDATE conversations c SET status = 'open' FROM t
                WHERE c.id = t.conversation_id
                RETURNING {rows.CONVERSATION_COLUMNS}, {rows.TICKET_COLUMNS}""",
            (self._clock(), thread.ticket.number),
        )
        row = await rows.fetch_one(cursor, "thread touch")
        conversation, ticket = rows.conversation_and_ticket(row)
        return msgspec.structs.replace(thread, conversation=conversation, ticket=ticket)

    # messages ----------------------------------------------------------------------------

    async def save_inbound(
        self, message: InboundMessage, customer_id: str, conversation_id: str
    ) -> tuple[StoredMessage, bool]:
        received_at = as_utc(message.received_at, "received_at")
        existing = await self.find_inbound(message.channel, message.provider_message_id)
        if existing is not None:
            return existing, False
        async with self._conn() as conn:
            row = await self._insert_inbound(
                conn,
                message,
                received_at,
                rows.as_uuid(customer_id),
                rows.as_uuid(conversation_id),
                senders=sender_keys(message),
                proven=[identifier_key(i) for i in proven_identifiers(message)],
            )
        if row is not None:
            return rows.message(row), True
        existing = await self.find_inbound(message.channel, message.provider_message_id)
        if existing is not None:  # a concurrent redelivery won the race
            return existing, False
        raise NotFound(f"conversation {conversation_id} of customer {customer_id}")

    @staticmethod
    async def _insert_inbound(
        conn: Conn,
        message: InboundMessage,
        received_at: datetime,
        customer_id: uuid.UUID | None,
        conversation_id: uuid.UUID | None,
        *,
        senders: list[str],
        proven: list[str],
    ) -> Row | None:
        """The stored row, or None when the message is already stored (or the conversation
        is not this customer's)."""
        attachments = msgspec.json.encode(list(message.attachments)).decode()
        cursor = await conn.execute(
            f"""INSERT INTO messages AS m (id, conversation_id, customer_id, channel, direction,
                    provider_message_id, content, subject, thread_ref, sender_name, attachments,
                    delivery_status, created_at, sender_ids, proven_ids, verified_by,
                    ticket_access)
                SELECT %s, c.id, c.customer_id, %s, 'inbound', %s, %s, %s, %s, %s,
                       %s::jsonb, 'received', %s, %s, %s, %s, %s
                FROM conversations c WHERE c.id = %s AND c.customer_id = %s
                ON CONFLICT (channel, provider_message_id) WHERE direction = 'inbound'
                DO NOTHING
                RETURNING {rows.MESSAGE_COLUMNS}""",
            (
                uuid.uuid4(),
                message.channel.value,
                message.provider_message_id,
                message.text,
                message.subject,
                message.thread_ref,
                message.sender_name,
                attachments,
                received_at,
                senders,
                proven,
                message.verified_by.value if message.verified_by and proven else None,
                message.ticket_access,
                conversation_id,
                customer_id,
            ),
        )
        return await cursor.fetchone()

    async def find_inbound(
        self, channel: Channel, provider_message_id: str
    ) -> StoredMessage | None:
        row = await self._one(_FIND_INBOUND_SQL, (channel.value, provider_message_id))
        return rows.message(row) if row else None

    async def save_outbound(self, draft: OutboundDraft) -> tuple[StoredMessage, bool]:
        """One statement, one commit: the reply, the ticket move and the events it carries."""
        status = draft.ticket_status
        moves_from = [s.value for s in TicketStatus if status and can_transition(s, status)]
        reply_id = uuid.uuid4()
        # the fte.outbound event names the reply; like the draft's own events, it is
        # queued only if the reply is new
        queued = list(draft.events)
        if draft.announce:
            outbound = events.OutboundEvent(message_id=str(reply_id), channel=draft.channel)
            queued.insert(0, (events.OUTBOUND, outbound))
        async with self._conn() as conn:
            cursor = await conn.execute(
                _SAVE_OUTBOUND_SQL,
                {
                    "id": reply_id,
                    "topics": [topic for topic, _ in queued],
                    "payloads": [events.encode(event) for _, event in queued],
                    "channel": draft.channel.value,
                    "inbound": rows.as_uuid(draft.in_reply_to),
                    "content": draft.reply.text,
                    "latency": draft.latency_ms,
                    "prompt": draft.usage.prompt_tokens,
                    "completion": draft.usage.completion_tokens,
                    "cost": draft.usage.cost_usd,
                    "record": msgspec.json.encode(draft.record).decode(),
                    "at": self._clock(),
                    "conversation": rows.as_uuid(draft.conversation_id),
                    "status": status.value if status else None,
                    "moves_from": moves_from,
                    "priority": draft.priority.value if draft.priority else None,
                    "tags": list(draft.tags),
                    "acknowledged": (
                        as_utc(draft.acknowledged_at, "acknowledged_at")
                        if draft.acknowledged_at
                        else None
                    ),
                },
            )
            row = await cursor.fetchone()
        if row is not None:
            if queued:  # the reply's own event and the draft's (metrics, escalation)
                self._hint.poke()
            return rows.message(row), True
        existing = await self.reply_to(draft.in_reply_to)
        if existing is not None:
            return existing, False
        inbound = await self.get_message(draft.in_reply_to)
        if inbound is None or inbound.direction is not Direction.INBOUND:
            raise NotFound(f"inbound message {draft.in_reply_to}")
        raise NotFound(f"conversation {draft.conversation_id}")

    async def reply_to(self, inbound_id: str) -> StoredMessage | None:
        key = rows.as_uuid(inbound_id)
        if key is None:
            return None
        row = await self._one(
            f"""SELECT {rows.MESSAGE_COLUMNS} FROM messages m
                WHERE in_reply_to = %s AND direction = 'outbound' AND author = 'agent'""",
            (key,),
        )
        return rows.message(row) if row else None

    async def set_delivery_status(
        self, message_id: str, status: DeliveryStatus, provider_message_id: str | None = None
    ) -> None:
        key = rows.as_uuid(message_id)
        row = None
        if key is not None:
            row = await self._one(
                """UPDATE messages SET delivery_status = %s,
                       provider_message_id = coalesce(%s, provider_message_id)
                   WHERE id = %s RETURNING id""",
                (status.value, provider_message_id, key),
            )
        if row is None:
            raise NotFound(f"message {message_id}")

    async def access_hash(self, number: str) -> bytes | None:
        row = await self._one(
            """SELECT coalesce((SELECT access_hash FROM tickets WHERE number = %(n)s),
                              (SELECT access_hash FROM receipts WHERE ticket_number = %(n)s))""",
            {"n": number},
        )
        return bytes(row[0]) if row and row[0] is not None else None

    async def receive(self, message: InboundMessage, access: Callable[[str], bytes]) -> Receipt:
        received_at = as_utc(message.received_at, "received_at")
        key = identifier_key(identifiers_for(message)[0])
        return await self._receipts.keep(message, access, key, received_at)

    async def receipt(self, number: str) -> Receipt | None:
        async with self._conn() as conn:
            return await receipts.find(conn, number)

    async def tickets(
        self,
        *,
        owner: Owner | None = None,
        status: TicketStatus | None = None,
        reason: str | None = None,
        limit: int = 100,
    ) -> list[Ticket]:
        found = await self._all(
            f"""SELECT {rows.TICKET_COLUMNS} FROM tickets t
                WHERE (%(owner)s::text IS NULL OR t.owner = %(owner)s)
                  AND (%(status)s::text IS NULL OR t.status = %(status)s)
                  AND (%(reason)s::text IS NULL OR t.escalation_reason = %(reason)s)
                ORDER BY CASE coalesce(t.urgency, t.priority) WHEN 'critical' THEN 0
                         WHEN 'high' THEN 1 WHEN 'normal' THEN 2 ELSE 3 END,
                         t.updated_at, t.number
                LIMIT %(limit)s""",
            {
                "owner": owner.value if owner else None,
                "status": status.value if status else None,
                "reason": reason,
                "limit": max(1, min(limit, 500)),
            },
        )
        return [rows.ticket(row) for row in found]

    async def messages_since(self, since: datetime, limit: int = 100_000) -> list[StoredMessage]:
        found = await self._all(
            f"""SELECT {rows.MESSAGE_COLUMNS} FROM messages m WHERE created_at >= %s
                ORDER BY created_at, seq LIMIT %s""",
            (as_utc(since, "since"), limit),
        )
        return [rows.message(row) for row in found]

    async def inbound_message(self, message_id: str) -> InboundMessage | None:
        async with self._conn() as conn:
            return await lifecycle.inbound_message(conn, message_id)

    async def claim_delivery(self, message_id: str, now: datetime, lease: timedelta) -> bool:
        async with self._conn() as conn:
            return await lifecycle.claim_delivery(conn, message_id, as_utc(now, "now"), lease)

    async def claim_acknowledgement(self, number: str, now: datetime, period: timedelta) -> bool:
        async with self._conn() as conn:
            return await lifecycle.claim_acknowledgement(conn, number, as_utc(now, "now"), period)

    async def record_decision(self, inbound_id: str, record: DecisionRecord) -> None:
        async with self._conn() as conn:
            await lifecycle.record_decision(conn, inbound_id, record, self._clock())

    async def save_human_reply(
        self, number: str, text: str, author_name: str, *, announce: bool = False
    ) -> StoredMessage:
        async with self._conn() as conn, conn.transaction():
            stored = await lifecycle.save_human_reply(
                conn, number, text, author_name, self._clock(), announce=announce
            )
        if announce:
            self._hint.poke()
        return stored

    async def reply_target(self, message_id: str) -> DeliveryTarget | None:
        async with self._conn() as conn:
            return await lifecycle.reply_target(conn, message_id)

    async def visible_history(
        self, inbound_id: str, limit: int = 20, *, whole_conversation: bool = False
    ) -> list[HistoryItem]:
        async with self._conn() as conn:
            return await lifecycle.visible_history(conn, inbound_id, limit, whole_conversation)

    async def get_message(self, message_id: str) -> StoredMessage | None:
        key = rows.as_uuid(message_id)
        if key is None:
            return None
        row = await self._one(
            f"SELECT {rows.MESSAGE_COLUMNS} FROM messages m WHERE id = %s", (key,)
        )
        return rows.message(row) if row else None

    async def conversation_messages(self, conversation_id: str) -> list[StoredMessage]:
        key = rows.as_uuid(conversation_id)
        if key is None:
            return []
        found = await self._all(
            f"""SELECT {rows.MESSAGE_COLUMNS} FROM messages m WHERE conversation_id = %s
                ORDER BY created_at, seq""",
            (key,),
        )
        return [rows.message(row) for row in found]

    async def customer_history(self, customer_id: str, limit: int = 20) -> list[HistoryItem]:
        key = rows.as_uuid(customer_id)
        if key is None or limit <= 0:
            return []
        found = await self._all(
            """SELECT h.conversation_id, t.number, h.channel, h.direction, h.content, h.created_at,
                      h.author
               FROM (SELECT conversation_id, channel, direction, content, created_at, seq, author
                     FROM messages WHERE customer_id = %s
                     ORDER BY created_at DESC, seq DESC LIMIT %s) h
               JOIN tickets t ON t.conversation_id = h.conversation_id
               ORDER BY h.created_at, h.seq""",
            (key, limit),
        )
        return [rows.history_item(row) for row in found]

    async def contact_count(self, customer_id: str) -> int:
        key = rows.as_uuid(customer_id)
        if key is None:
            return 0
        row = await self._one(_CONTACT_COUNT_SQL, (key,))
        return int(row[0]) if row else 0
