"""The PostgreSQL side of the conversation lifecycle: what a sender may see, the
acknowledgement slot of a human-owned ticket, decisions that send nothing, and a person's
reply. Functions over a connection; PostgresStore exposes them as CrmStore methods."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import msgspec

from adapters.storage.postgres import rows
from adapters.storage.postgres.rows import Conn
from fte_core import events
from fte_core.errors import InvalidTransition, NotFound
from fte_core.identity import delivery_target
from fte_core.models import (
    Attachment,
    Channel,
    DecisionRecord,
    HistoryItem,
    InboundMessage,
    StoredMessage,
    TicketStatus,
    Verification,
)
from fte_core.ports import DeliveryTarget

# An inbound message x is visible to the inbound message `me` when both come from one
# customer and x's proven address is one `me` proved, or x is in me's conversation and
# was written from an address `me` proved (or me holds the ticket's access token).
# Replies are visible with the message they answer.
_VISIBLE_SQL = """
WITH me AS (
    SELECT id, conversation_id, customer_id, proven_ids FROM messages
    WHERE id = %(id)s AND direction = 'inbound'
), seen AS (
    SELECT x.id FROM messages x, me
    WHERE x.customer_id = me.customer_id AND x.direction = 'inbound' AND x.id <> me.id
      AND (x.proven_ids && me.proven_ids
           OR (x.conversation_id = me.conversation_id
               AND (%(whole)s OR x.sender_ids && me.proven_ids)))
)
SELECT h.conversation_id, t.number, h.channel, h.direction, h.content, h.created_at, h.author
FROM (SELECT m.conversation_id, m.channel, m.direction, m.content, m.created_at, m.author,
             m.seq
      FROM messages m
      WHERE m.customer_id = (SELECT customer_id FROM me)
        AND (m.id IN (SELECT id FROM seen) OR m.in_reply_to IN (SELECT id FROM seen))
      ORDER BY m.created_at DESC, m.seq DESC LIMIT %(limit)s) h
JOIN tickets t ON t.conversation_id = h.conversation_id
ORDER BY h.created_at, h.seq
"""


async def visible_history(
    conn: Conn, inbound_id: str, limit: int, whole_conversation: bool
) -> list[HistoryItem]:
    key = rows.as_uuid(inbound_id)
    if key is None or limit <= 0:
        return []
    cursor = await conn.execute(
        _VISIBLE_SQL, {"id": key, "whole": whole_conversation, "limit": limit}
    )
    return [rows.history_item(row) for row in await cursor.fetchall()]


async def claim_acknowledgement(conn: Conn, number: str, now: datetime, period: timedelta) -> bool:
    cursor = await conn.execute(
        """UPDATE tickets SET acknowledged_at = %(now)s
           WHERE number = %(number)s
             AND (acknowledged_at IS NULL OR acknowledged_at <= %(since)s)
           RETURNING 1""",
        {"now": now, "number": number, "since": now - period},
    )
    return await cursor.fetchone() is not None


async def record_decision(
    conn: Conn, inbound_id: str, record: DecisionRecord, at: datetime
) -> None:
    key = rows.as_uuid(inbound_id)
    cursor = await conn.execute(
        """UPDATE messages SET record = %s::jsonb, processed_at = %s
           WHERE id = %s AND direction = 'inbound' RETURNING 1""",
        (msgspec.json.encode(record).decode(), at, key),
    )
    if key is None or await cursor.fetchone() is None:
        raise NotFound(f"inbound message {inbound_id}")


async def save_human_reply(
    conn: Conn, number: str, text: str, author_name: str, at: datetime, *, announce: bool = False
) -> StoredMessage:
    """Stored as an answer to the ticket's latest customer message; the ticket then waits
    for the customer (pending), still owned by a person. With `announce` its fte.outbound
    event is queued in the caller's transaction."""
    cursor = await conn.execute(
        "SELECT status, conversation_id FROM tickets WHERE number = %s FOR UPDATE", (number,)
    )
    found = await cursor.fetchone()
    if found is None:
        raise NotFound(f"ticket {number}")
    status = TicketStatus(found[0])
    if status is TicketStatus.CLOSED:
        raise InvalidTransition(f"ticket {number} is closed")
    cursor = await conn.execute(
        f"""INSERT INTO messages AS m (id, conversation_id, customer_id, channel, direction,
                author, author_name, in_reply_to, content, delivery_status, created_at)
            SELECT %(id)s, i.conversation_id, i.customer_id, i.channel, 'outbound', 'human',
                   %(name)s, i.id, %(text)s, 'queued', %(at)s
            FROM messages i WHERE i.conversation_id = %(conversation)s
              AND i.direction = 'inbound'
            ORDER BY i.created_at DESC, i.seq DESC LIMIT 1
            RETURNING {rows.MESSAGE_COLUMNS}""",
        {
            "id": uuid.uuid4(),
            "name": author_name,
            "text": text,
            "at": at,
            "conversation": found[1],
        },
    )
    row = await cursor.fetchone()
    if row is None:
        raise NotFound(f"a customer message on ticket {number}")
    waiting = "pending" if status in (TicketStatus.OPEN, TicketStatus.ESCALATED) else status.value
    await conn.execute(
        """WITH t AS (UPDATE tickets SET status = %s, assignee = %s, updated_at = %s
                      WHERE number = %s RETURNING conversation_id, status)
           UPDATE conversations c SET status = t.status FROM t WHERE c.id = t.conversation_id""",
        (waiting, author_name, at, number),
    )
    stored = rows.message(row)
    if announce:
        event = events.OutboundEvent(message_id=stored.id, channel=stored.channel)
        await conn.execute(
            "INSERT INTO outbox (topic, key, payload) SELECT %s, customer_id::text, %s"
            " FROM conversations WHERE id = %s",
            (events.OUTBOUND, events.encode(event), found[1]),
        )
    return stored


async def reply_target(conn: Conn, message_id: str) -> DeliveryTarget | None:
    """Where an answer to this message goes (an outbound one: the message it answers)."""
    key = rows.as_uuid(message_id)
    if key is None:
        return None
    cursor = await conn.execute(
        """SELECT channel, sender_ids, subject, thread_ref, provider_message_id FROM messages
           WHERE id = coalesce((SELECT in_reply_to FROM messages WHERE id = %(id)s), %(id)s)
             AND direction = 'inbound'""",
        {"id": key},
    )
    row = await cursor.fetchone()
    if row is None:
        return None
    return delivery_target(Channel(row[0]), row[1], row[2], row[3], row[4])


async def inbound_message(conn: Conn, message_id: str) -> InboundMessage | None:
    """A stored customer message as its channel delivered it (the worker's input)."""
    key = rows.as_uuid(message_id)
    if key is None:
        return None
    cursor = await conn.execute(
        """SELECT channel, provider_message_id, content, created_at, sender_ids, sender_name,
                  subject, thread_ref, attachments::text, verified_by, ticket_access
           FROM messages WHERE id = %s AND direction = 'inbound'""",
        (key,),
    )
    row = await cursor.fetchone()
    if row is None:
        return None
    emails = [s.removeprefix("email:") for s in row[4] if s.startswith("email:")]
    phones = [s.removeprefix("phone:") for s in row[4] if s.startswith("phone:")]
    return InboundMessage(
        channel=Channel(row[0]),
        provider_message_id=row[1],
        text=row[2],
        received_at=rows.utc(row[3]),
        sender_email=emails[0] if emails else None,
        sender_phone=phones[0] if phones else None,
        sender_name=row[5],
        subject=row[6],
        thread_ref=row[7],
        attachments=msgspec.json.decode(row[8], type=tuple[Attachment, ...]),
        verified_by=Verification(row[9]) if row[9] else None,
        ticket_access=row[10],
    )


async def claim(conn: Conn, inbound_id: str, now: datetime, lease: timedelta) -> bool:
    """Hold an unprocessed inbound message for `lease`: of two copies handled at once, one
    decides; a holder that died loses the message when its lease runs out."""
    key = rows.as_uuid(inbound_id)
    cursor = await conn.execute(
        """UPDATE messages SET claimed_until = %(until)s
           WHERE id = %(id)s AND direction = 'inbound' AND processed_at IS NULL
             AND (claimed_until IS NULL OR claimed_until <= %(now)s)
           RETURNING 1""",
        {"id": key, "now": now, "until": now + lease},
    )
    return key is not None and await cursor.fetchone() is not None


async def claim_delivery(conn: Conn, message_id: str, now: datetime, lease: timedelta) -> bool:
    """Hold a reply for sending: a queued or failed one, or one whose sender died."""
    key = rows.as_uuid(message_id)
    cursor = await conn.execute(
        """UPDATE messages SET delivery_status = 'sending', sending_until = %(until)s
           WHERE id = %(id)s AND direction = 'outbound'
             AND (delivery_status IN ('queued', 'failed')
                  OR (delivery_status = 'sending' AND sending_until <= %(now)s))
           RETURNING 1""",
        {"id": key, "now": now, "until": now + lease},
    )
    return key is not None and await cursor.fetchone() is not None
