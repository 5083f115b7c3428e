"""Column lists and row decoding shared by the PostgreSQL store's modules."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec
import psycopg

from fte_core.errors import StorageError
from fte_core.models import (
    Author,
    Channel,
    Conversation,
    Customer,
    DecisionRecord,
    DeliveryStatus,
    Direction,
    HistoryItem,
    Identifier,
    IdentifierKind,
    Owner,
    Priority,
    StoredMessage,
    Ticket,
    TicketStatus,
)

Conn = psycopg.AsyncConnection[Any]


async def fetch_one(cursor: psycopg.AsyncCursor[Any], what: str) -> tuple[Any, ...]:
    """The row a statement always returns (RETURNING after a locked row, an aggregate);
    its absence is a broken invariant, raised even under `python -O`, where an assert
    would vanish."""
    row = await cursor.fetchone()
    if row is None:
        raise StorageError(f"{what}: the statement returned no row")
    return tuple(row)


Row = tuple[Any, ...]

CUSTOMER_COLUMNS = """c.id, c.name, c.created_at,
    ARRAY(SELECT kind FROM customer_identifiers WHERE customer_id = c.id ORDER BY id),
    ARRAY(SELECT value FROM customer_identifiers WHERE customer_id = c.id ORDER BY id),
    ARRAY(SELECT verified_by IS NOT NULL FROM customer_identifiers
          WHERE customer_id = c.id ORDER BY id)"""
TICKET_COLUMNS = """t.number, t.conversation_id, t.customer_id, t.channel, t.status, t.priority,
    t.category, t.escalation_reason, t.urgency, t.created_at, t.updated_at, t.owner,
    t.assignee, t.tags, t.acknowledged_at"""
CONVERSATION_COLUMNS = """c.id, c.customer_id, c.channel, c.status, c.started_at,
    c.last_message_at, t.number"""
CONVERSATION_WIDTH = 7
MESSAGE_COLUMNS = """m.id, m.conversation_id, m.channel, m.direction, m.provider_message_id,
    m.content, m.created_at, m.delivery_status, m.record::text, m.author, m.author_name,
    m.processed_at"""


def as_uuid(value: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except (ValueError, TypeError, AttributeError):
        return None


def utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def ticket(row: Row) -> Ticket:
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
        created_at=utc(row[9]),
        updated_at=utc(row[10]),
        owner=Owner(row[11]),
        assignee=row[12],
        tags=tuple(row[13]),
        acknowledged_at=utc(row[14]) if row[14] else None,
    )


def conversation(row: Row) -> Conversation:
    return Conversation(
        id=str(row[0]),
        customer_id=str(row[1]),
        channel=Channel(row[2]),
        status=TicketStatus(row[3]),
        started_at=utc(row[4]),
        last_message_at=utc(row[5]),
        ticket_number=row[6],
    )


def conversation_and_ticket(row: Row) -> tuple[Conversation, Ticket]:
    """A row of CONVERSATION_COLUMNS followed by TICKET_COLUMNS."""
    return conversation(row[:CONVERSATION_WIDTH]), ticket(row[CONVERSATION_WIDTH:])


def message(row: Row) -> StoredMessage:
    record = msgspec.json.decode(row[8], type=DecisionRecord) if row[8] else None
    return StoredMessage(
        id=str(row[0]),
        conversation_id=str(row[1]),
        channel=Channel(row[2]),
        direction=Direction(row[3]),
        provider_message_id=row[4],
        text=row[5],
        created_at=utc(row[6]),
        delivery_status=DeliveryStatus(row[7]),
        record=record,
        author=Author(row[9]),
        author_name=row[10],
        processed_at=utc(row[11]) if row[11] else None,
    )


def customer(row: Row) -> Customer:
    identifiers = tuple(
        Identifier(IdentifierKind(kind), value) for kind, value in zip(row[3], row[4], strict=True)
    )
    proven = tuple(i for i, ok in zip(identifiers, row[5], strict=True) if ok)
    return Customer(
        id=str(row[0]),
        name=row[1],
        identifiers=identifiers,
        created_at=utc(row[2]),
        verified=proven,
    )


def history_item(row: Row) -> HistoryItem:
    """conversation_id, ticket number, channel, direction, content, created_at, author."""
    return HistoryItem(
        conversation_id=str(row[0]),
        ticket_number=row[1],
        channel=Channel(row[2]),
        direction=Direction(row[3]),
        text=row[4],
        created_at=utc(row[5]),
        author=Author(row[6]),
    )
