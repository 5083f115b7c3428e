"""PostgresStore: the CrmStore port over psycopg 3 (parameterised SQL, no ORM).

It behaves exactly like fte_core.testing.store.InMemoryStore; the contract suite in
tests/integration runs against both. Concurrency is handled by the database: unique
constraints plus INSERT ... ON CONFLICT make identity resolution and message storage
idempotent, and a row lock on the customer serialises threading per customer.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import psycopg
from psycopg_pool import AsyncConnectionPool

from adapters.storage.postgres.pool import connection
from fte_core.clock import Clock, as_utc, utc_now
from fte_core.errors import InvalidTransition, NotFound, StorageError
from fte_core.identity import canonical_identifiers, clean_name, normalize_identifier
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
    Priority,
    StoredMessage,
    Thread,
    Ticket,
    TicketStatus,
    can_transition,
)
from fte_core.ports import OutboundDraft, Turn

log = logging.getLogger(__name__)

Conn = psycopg.AsyncConnection[Any]
Row = tuple[Any, ...]

_RESOLVE_ATTEMPTS = 8

_CUSTOMER_COLUMNS = """c.id, c.name, c.created_at,
    ARRAY(SELECT kind FROM customer_identifiers WHERE customer_id = c.id ORDER BY id),
    ARRAY(SELECT value FROM customer_identifiers WHERE customer_id = c.id ORDER BY id)"""
_TICKET_COLUMNS = """t.number, t.conversation_id, t.customer_id, t.channel, t.status, t.priority,
    t.category, t.escalation_reason, t.urgency, t.created_at, t.updated_at"""
_CONVERSATION_COLUMNS = """c.id, c.customer_id, c.channel, c.status, c.started_at,
    c.last_message_at, t.number"""
_CONVERSATION_WIDTH = 7
_MESSAGE_COLUMNS = """m.id, m.conversation_id, m.channel, m.direction, m.provider_message_id,
    m.content, m.created_at, m.delivery_status, m.record::text"""


_FIND_INBOUND_SQL = f"""SELECT {_MESSAGE_COLUMNS} FROM messages m WHERE channel = %s
    AND provider_message_id = %s AND direction = 'inbound'"""

_CONTACT_COUNT_SQL = (
    "SELECT count(*) FROM messages WHERE customer_id = %s AND direction = 'inbound'"
)

# The reply is inserted only for an inbound message, once (the unique index on
# in_reply_to); the ticket moves only when the reply is new and the lifecycle allows it,
# and the conversation mirrors the ticket's status.
_SAVE_OUTBOUND_SQL = f"""
WITH reply AS (
    INSERT INTO messages AS m (id, conversation_id, customer_id, channel, direction,
        in_reply_to, content, delivery_status, latency_ms, prompt_tokens, completion_tokens,
        cost_usd, record, created_at)
    SELECT %(id)s, c.id, c.customer_id, %(channel)s, 'outbound', i.id, %(content)s, 'queued',
           %(latency)s, %(prompt)s, %(completion)s, %(cost)s, %(record)s::jsonb, %(at)s
    FROM conversations c
    JOIN messages i ON i.id = %(inbound)s AND i.direction = 'inbound'
    WHERE c.id = %(conversation)s
    ON CONFLICT (in_reply_to) WHERE direction = 'outbound' DO NOTHING
    RETURNING {_MESSAGE_COLUMNS}
), moved AS (
    UPDATE tickets SET status = %(status)s::text, updated_at = %(at)s
    WHERE conversation_id = (SELECT conversation_id FROM reply)
      AND %(status)s::text IS NOT NULL AND status = ANY(%(moves_from)s::text[])
    RETURNING conversation_id
), mirrored AS (
    UPDATE conversations SET status = %(status)s::text
    WHERE id = (SELECT conversation_id FROM moved)
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


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except (ValueError, TypeError, AttributeError):
        return None


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def _ticket(row: Row) -> Ticket:
    return Ticket(
        number=row[0],
        conversation_id=str(row[1]),
        customer_id=str(row[2]),
        channel=Channel(row[3]),
        status=TicketStatus(row[4]),
        priority=Priority(row[5]),
        category=row[6],
        escalation_reason=row[7],
        urgency=Priority(row[8]) if row[8] else None,
        created_at=_utc(row[9]),
        updated_at=_utc(row[10]),
    )


def _conversation(row: Row) -> Conversation:
    return Conversation(
        id=str(row[0]),
        customer_id=str(row[1]),
        channel=Channel(row[2]),
        status=TicketStatus(row[3]),
        started_at=_utc(row[4]),
        last_message_at=_utc(row[5]),
        ticket_number=row[6],
    )


def _conversation_and_ticket(row: Row) -> tuple[Conversation, Ticket]:
    """A row of _CONVERSATION_COLUMNS followed by _TICKET_COLUMNS."""
    return _conversation(row[:_CONVERSATION_WIDTH]), _ticket(row[_CONVERSATION_WIDTH:])


def _message(row: Row) -> StoredMessage:
    record = msgspec.json.decode(row[8], type=DecisionRecord) if row[8] else None
    return StoredMessage(
        id=str(row[0]),
        conversation_id=str(row[1]),
        channel=Channel(row[2]),
        direction=Direction(row[3]),
        provider_message_id=row[4],
        text=row[5],
        created_at=_utc(row[6]),
        delivery_status=DeliveryStatus(row[7]),
        record=record,
    )


def _utc_customer(customer: Customer) -> Customer:
    """The clock may be in any zone; PostgreSQL hands times back in UTC."""
    return msgspec.structs.replace(customer, created_at=_utc(customer.created_at))


def _customer(row: Row) -> Customer:
    identifiers = tuple(
        Identifier(IdentifierKind(kind), value) for kind, value in zip(row[3], row[4], strict=True)
    )
    return Customer(id=str(row[0]), name=row[1], identifiers=identifiers, created_at=_utc(row[2]))


class PostgresStore:
    def __init__(self, pool: AsyncConnectionPool, *, clock: Clock = utc_now) -> None:
        self._pool = pool
        self._clock = clock

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
            return CustomerResolution(customer=_utc_customer(customer), created=True)
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
                RETURNING {_CUSTOMER_COLUMNS}""",
            (name, customer_id),
        )
        row = await cursor.fetchone()
        if row is None:
            raise NotFound(f"customer {customer_id}")
        return _customer(row)

    @staticmethod
    async def _load_customer(conn: Conn, customer_id: uuid.UUID) -> Customer:
        cursor = await conn.execute(
            f"SELECT {_CUSTOMER_COLUMNS} FROM customers c WHERE c.id = %s",
            (customer_id,),
        )
        row = await cursor.fetchone()
        if row is None:
            raise NotFound(f"customer {customer_id}")
        return _customer(row)

    async def get_customer(self, customer_id: str) -> Customer | None:
        key = _uuid(customer_id)
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
        key = _uuid(customer_id)
        if key is None:
            return []
        rows = await self._all(
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
            for row in rows
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
        key = _uuid(customer_id)
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
    ) -> Thread:
        """`thread` once the caller holds the customer's row lock."""
        cursor = await conn.execute(
            f"""SELECT {_TICKET_COLUMNS} FROM conversations c
                JOIN tickets t ON t.conversation_id = c.id
                WHERE c.customer_id = %s AND c.last_message_at >= %s
                  AND t.status <> 'closed'
                ORDER BY c.last_message_at DESC LIMIT 1""",
            (customer_id, now - window),
        )
        row = await cursor.fetchone()
        if row is None:
            return await self._open_thread(conn, customer_id, channel, now, category, priority)
        return await self._resume(conn, _ticket(row), now)

    async def _resume(self, conn: Conn, ticket: Ticket, now: datetime) -> Thread:
        reopened = ticket.status is TicketStatus.RESOLVED
        if reopened:
            cursor = await conn.execute(
                f"""UPDATE tickets t SET status = 'open', updated_at = %s WHERE number = %s
                    RETURNING {_TICKET_COLUMNS}""",
                (now, ticket.number),
            )
            row = await cursor.fetchone()
            assert row is not None  # locked above
            ticket = _ticket(row)
        cursor = await conn.execute(
            f"""UPDATE conversations c
                SET status = %s, last_message_at = greatest(c.last_message_at, %s)
                FROM tickets t WHERE c.id = %s AND t.conversation_id = c.id
                RETURNING {_CONVERSATION_COLUMNS}""",
            (ticket.status.value, now, uuid.UUID(ticket.conversation_id)),
        )
        row = await cursor.fetchone()
        assert row is not None
        return Thread(
            conversation=_conversation(row), ticket=ticket, resumed=True, reopened=reopened
        )

    @staticmethod
    async def _open_thread(
        conn: Conn,
        customer_id: uuid.UUID,
        channel: Channel,
        now: datetime,
        category: str | None,
        priority: Priority,
    ) -> Thread:
        conversation_id = uuid.uuid4()
        # One statement for both rows: the ticket's foreign key is checked at its end.
        cursor = await conn.execute(
            f"""WITH c AS (
                    INSERT INTO conversations (id, customer_id, channel, status, started_at,
                        last_message_at)
                    VALUES (%(id)s, %(customer)s, %(channel)s, 'open', %(now)s, %(now)s))
                INSERT INTO tickets AS t (conversation_id, customer_id, channel, status,
                    priority, category, created_at, updated_at)
                VALUES (%(id)s, %(customer)s, %(channel)s, 'open', %(priority)s, %(category)s,
                    %(now)s, %(now)s)
                RETURNING {_TICKET_COLUMNS}""",
            {
                "id": conversation_id,
                "customer": customer_id,
                "channel": channel.value,
                "now": now,
                "priority": priority.value,
                "category": category,
            },
        )
        row = await cursor.fetchone()
        assert row is not None
        ticket = _ticket(row)
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
            f"SELECT {_TICKET_COLUMNS} FROM tickets t WHERE number = %s", (number,)
        )
        return _ticket(row) if row else None

    async def update_ticket(
        self,
        number: str,
        *,
        status: TicketStatus | None = None,
        priority: Priority | None = None,
        escalation_reason: str | None = None,
        urgency: Priority | None = None,
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
                        urgency = coalesce(%s, urgency), updated_at = %s
                    WHERE number = %s RETURNING {_TICKET_COLUMNS}""",
                (
                    status.value if status else None,
                    priority.value if priority else None,
                    escalation_reason,
                    urgency.value if urgency else None,
                    self._clock(),
                    number,
                ),
            )
            updated = await cursor.fetchone()
            assert updated is not None
            ticket = _ticket(updated)
            await conn.execute(
                "UPDATE conversations SET status = %s WHERE id = %s",
                (ticket.status.value, uuid.UUID(ticket.conversation_id)),
            )
            return ticket

    async def get_conversation(self, conversation_id: str) -> Conversation | None:
        key = _uuid(conversation_id)
        if key is None:
            return None
        row = await self._one(
            f"""SELECT {_CONVERSATION_COLUMNS} FROM conversations c
                JOIN tickets t ON t.conversation_id = c.id WHERE c.id = %s""",
            (key,),
        )
        return _conversation(row) if row else None

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
        )
        async with self._conn() as conn:
            for _ in range(_RESOLVE_ATTEMPTS):
                try:
                    # Pipeline mode: BEGIN, the row lock and other statements whose result
                    # is not read go out with the next query instead of a round trip each.
                    async with conn.pipeline(), conn.transaction():
                        return await self._open_turn_once(conn, turn)
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
        existing = _message(found) if found else None
        if existing is None:
            thread = await self._thread_locked(
                conn, key, message.channel, turn.now, turn.window, turn.category, turn.priority
            )
        else:
            thread = await self._thread_of(conn, existing)
        if thread.ticket.status is TicketStatus.PENDING:
            thread = await self._reopen_pending(conn, thread)
        if existing is None:
            row = await self._insert_inbound(
                conn, message, turn.received_at, key, uuid.UUID(thread.conversation.id)
            )
            if row is None:  # a concurrent delivery of the same message committed first
                raise _IdentifierRaceError
            inbound, created = _message(row), True
        else:
            inbound, created = existing, False
        cursor = await conn.execute(_CONTACT_COUNT_SQL, (key,))
        count = await cursor.fetchone()
        assert count is not None
        return Turn(
            resolution=resolution,
            thread=thread,
            inbound=inbound,
            created=created,
            contact_count=int(count[0]),
        )

    @staticmethod
    async def _thread_of(conn: Conn, message: StoredMessage) -> Thread:
        cursor = await conn.execute(
            f"""SELECT {_CONVERSATION_COLUMNS}, {_TICKET_COLUMNS} FROM conversations c
                JOIN tickets t ON t.conversation_id = c.id WHERE c.id = %s""",
            (uuid.UUID(message.conversation_id),),
        )
        row = await cursor.fetchone()
        assert row is not None  # a message's conversation and ticket are never deleted alone
        conversation, ticket = _conversation_and_ticket(row)
        return Thread(conversation=conversation, ticket=ticket, resumed=True)

    async def _reopen_pending(self, conn: Conn, thread: Thread) -> Thread:
        """The customer wrote again while we waited for them: the ticket is open again."""
        cursor = await conn.execute(
            f"""WITH t AS (
                    UPDATE tickets t SET status = 'open', updated_at = %s
                    WHERE number = %s RETURNING {_TICKET_COLUMNS})
                UPDATE conversations c SET status = 'open' FROM t
                WHERE c.id = t.conversation_id
                RETURNING {_CONVERSATION_COLUMNS}, {_TICKET_COLUMNS}""",
            (self._clock(), thread.ticket.number),
        )
        row = await cursor.fetchone()
        assert row is not None
        conversation, ticket = _conversation_and_ticket(row)
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
                conn, message, received_at, _uuid(customer_id), _uuid(conversation_id)
            )
        if row is not None:
            return _message(row), True
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
    ) -> Row | None:
        """The stored row, or None when the message is already stored (or the conversation
        is not this customer's)."""
        attachments = msgspec.json.encode(list(message.attachments)).decode()
        cursor = await conn.execute(
            f"""INSERT INTO messages AS m (id, conversation_id, customer_id, channel, direction,
                    provider_message_id, content, subject, thread_ref, sender_name, attachments,
                    delivery_status, created_at)
                SELECT %s, c.id, c.customer_id, %s, 'inbound', %s, %s, %s, %s, %s,
                       %s::jsonb, 'received', %s
                FROM conversations c WHERE c.id = %s AND c.customer_id = %s
                ON CONFLICT (channel, provider_message_id) WHERE direction = 'inbound'
                DO NOTHING
                RETURNING {_MESSAGE_COLUMNS}""",
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
                conversation_id,
                customer_id,
            ),
        )
        return await cursor.fetchone()

    async def find_inbound(
        self, channel: Channel, provider_message_id: str
    ) -> StoredMessage | None:
        row = await self._one(_FIND_INBOUND_SQL, (channel.value, provider_message_id))
        return _message(row) if row else None

    async def save_outbound(self, draft: OutboundDraft) -> tuple[StoredMessage, bool]:
        """One statement, one commit: the reply, and the ticket move it carries."""
        status = draft.ticket_status
        moves_from = [s.value for s in TicketStatus if status and can_transition(s, status)]
        async with self._conn() as conn:
            cursor = await conn.execute(
                _SAVE_OUTBOUND_SQL,
                {
                    "id": uuid.uuid4(),
                    "channel": draft.channel.value,
                    "inbound": _uuid(draft.in_reply_to),
                    "content": draft.reply.text,
                    "latency": draft.latency_ms,
                    "prompt": draft.usage.prompt_tokens,
                    "completion": draft.usage.completion_tokens,
                    "cost": draft.usage.cost_usd,
                    "record": msgspec.json.encode(draft.record).decode(),
                    "at": self._clock(),
                    "conversation": _uuid(draft.conversation_id),
                    "status": status.value if status else None,
                    "moves_from": moves_from,
                },
            )
            row = await cursor.fetchone()
        if row is not None:
            return _message(row), True
        existing = await self.reply_to(draft.in_reply_to)
        if existing is not None:
            return existing, False
        inbound = await self.get_message(draft.in_reply_to)
        if inbound is None or inbound.direction is not Direction.INBOUND:
            raise NotFound(f"inbound message {draft.in_reply_to}")
        raise NotFound(f"conversation {draft.conversation_id}")

    async def reply_to(self, inbound_id: str) -> StoredMessage | None:
        key = _uuid(inbound_id)
        if key is None:
            return None
        row = await self._one(
            f"""SELECT {_MESSAGE_COLUMNS} FROM messages m
                WHERE in_reply_to = %s AND direction = 'outbound'""",
            (key,),
        )
        return _message(row) if row else None

    async def set_delivery_status(
        self, message_id: str, status: DeliveryStatus, provider_message_id: str | None = None
    ) -> None:
        key = _uuid(message_id)
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

    async def get_message(self, message_id: str) -> StoredMessage | None:
        key = _uuid(message_id)
        if key is None:
            return None
        row = await self._one(f"SELECT {_MESSAGE_COLUMNS} FROM messages m WHERE id = %s", (key,))
        return _message(row) if row else None

    async def conversation_messages(self, conversation_id: str) -> list[StoredMessage]:
        key = _uuid(conversation_id)
        if key is None:
            return []
        rows = await self._all(
            f"""SELECT {_MESSAGE_COLUMNS} FROM messages m WHERE conversation_id = %s
                ORDER BY created_at, seq""",
            (key,),
        )
        return [_message(row) for row in rows]

    async def customer_history(self, customer_id: str, limit: int = 20) -> list[HistoryItem]:
        key = _uuid(customer_id)
        if key is None or limit <= 0:
            return []
        rows = await self._all(
            """SELECT h.conversation_id, t.number, h.channel, h.direction, h.content, h.created_at
               FROM (SELECT conversation_id, channel, direction, content, created_at, seq
                     FROM messages WHERE customer_id = %s
                     ORDER BY created_at DESC, seq DESC LIMIT %s) h
               JOIN tickets t ON t.conversation_id = h.conversation_id
               ORDER BY h.created_at, h.seq""",
            (key, limit),
        )
        return [
            HistoryItem(
                conversation_id=str(row[0]),
                ticket_number=row[1],
                channel=Channel(row[2]),
                direction=Direction(row[3]),
                text=row[4],
                created_at=_utc(row[5]),
            )
            for row in rows
        ]

    async def contact_count(self, customer_id: str) -> int:
        key = _uuid(customer_id)
        if key is None:
            return 0
        row = await self._one(_CONTACT_COUNT_SQL, (key,))
        return int(row[0]) if row else 0
