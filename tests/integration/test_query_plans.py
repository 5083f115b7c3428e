"""The hot queries use their indexes: EXPLAIN after ANALYZE on a populated database."""

from __future__ import annotations

import json
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool

pytestmark = pytest.mark.postgres

# 5,000 customers with an email each, one conversation + ticket each, 4 messages each.
_POPULATE = """
INSERT INTO customers (id, name, created_at)
SELECT md5('c' || i)::uuid, 'Customer ' || i, now() FROM generate_series(1, 5000) i;
INSERT INTO customer_identifiers (customer_id, kind, value)
SELECT md5('c' || i)::uuid, 'email', 'user' || i || '@example.com' FROM generate_series(1, 5000) i;
INSERT INTO conversations (id, customer_id, channel, status, started_at, last_message_at)
SELECT md5('v' || i)::uuid, md5('c' || i)::uuid, 'email', 'open',
       now() - i * interval '1 minute', now() - i * interval '1 minute'
FROM generate_series(1, 5000) i;
INSERT INTO tickets (conversation_id, customer_id, channel, status, priority, created_at,
                     updated_at)
SELECT md5('v' || i)::uuid, md5('c' || i)::uuid, 'email', 'open', 'normal', now(), now()
FROM generate_series(1, 5000) i;
INSERT INTO messages (id, conversation_id, customer_id, channel, direction,
                      provider_message_id, content, delivery_status, created_at)
SELECT md5('m' || i || '-' || j)::uuid, md5('v' || i)::uuid, md5('c' || i)::uuid, 'email',
       'inbound', 'pm-' || i || '-' || j, 'hello ' || j, 'received',
       now() - (i * 4 + j) * interval '1 second'
FROM generate_series(1, 5000) i, generate_series(1, 4) j;
ANALYZE;
"""

CUSTOMER = "md5('c42')::uuid"
HOT_QUERIES = {
    "identifier lookup": (
        "SELECT customer_id FROM customer_identifiers "
        "WHERE kind = 'email' AND value = 'user42@example.com'"
    ),
    "customer identifiers": (
        f"SELECT kind, value FROM customer_identifiers WHERE customer_id = {CUSTOMER} ORDER BY id"
    ),
    "latest conversation": f"""
        SELECT t.number FROM conversations c JOIN tickets t ON t.conversation_id = c.id
        WHERE c.customer_id = {CUSTOMER} AND c.last_message_at >= now() - interval '1 day'
          AND t.status <> 'closed'
        ORDER BY c.last_message_at DESC LIMIT 1""",
    "inbound dedupe": (
        "SELECT id FROM messages WHERE channel = 'email' AND provider_message_id = 'pm-42-1'"
        " AND direction = 'inbound'"
    ),
    "conversation messages": (
        "SELECT id FROM messages WHERE conversation_id = md5('v42')::uuid ORDER BY created_at, seq"
    ),
    "customer history": f"""
        SELECT h.content, t.number
        FROM (SELECT conversation_id, content, created_at, seq FROM messages
              WHERE customer_id = {CUSTOMER} ORDER BY created_at DESC, seq DESC LIMIT 20) h
        JOIN tickets t ON t.conversation_id = h.conversation_id
        ORDER BY h.created_at, h.seq""",
    "contact count": (
        f"SELECT count(*) FROM messages WHERE customer_id = {CUSTOMER} AND direction = 'inbound'"
    ),
    "ticket by number": "SELECT status FROM tickets WHERE number = 'TKT-000042'",
    "reply to": (
        "SELECT id FROM messages WHERE in_reply_to = md5('m1-1')::uuid AND direction = 'outbound'"
        " AND author = 'agent'"
    ),
}


def _scans(plan: dict[str, Any]) -> list[tuple[str, str]]:
    found = [(plan["Node Type"], plan.get("Relation Name", ""))]
    for child in plan.get("Plans", []):
        found.extend(_scans(child))
    return found


async def test_hot_queries_use_indexes(pg_pool: AsyncConnectionPool[Any]) -> None:
    plans: dict[str, list[tuple[str, str]]] = {}
    async with pg_pool.connection() as conn:
        await conn.execute(_POPULATE.encode())
        for name, query in HOT_QUERIES.items():
            cursor = await conn.execute(f"EXPLAIN (FORMAT JSON) {query}".encode())
            row = await cursor.fetchone()
            assert row is not None
            plan = row[0] if isinstance(row[0], list) else json.loads(row[0])
            plans[name] = _scans(plan[0]["Plan"])
    seq_scans = {n: s for n, s in plans.items() if any(node == "Seq Scan" for node, _ in s)}
    assert seq_scans == {}
    assert all(any("Index" in node for node, _ in s) for s in plans.values()), plans
