"""The monitor's queries (every ~20 s) use the indexes of migration 0012 on a populated
database, so a refresh stays cheap however many messages are stored."""

from __future__ import annotations

import json
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool

from adapters.storage.postgres.monitoring import _DISAGREEING
from tests.integration.test_query_plans import _POPULATE, _scans

pytestmark = pytest.mark.postgres

MONITOR_QUERIES = {
    "last customer message per channel": (
        "SELECT c, (SELECT max(created_at) FROM messages m"
        " WHERE m.direction = 'inbound' AND m.channel = c)"
        " FROM unnest(ARRAY['email', 'whatsapp', 'web_form']) AS c"
    ),
    "agent replies of the window": (
        "SELECT channel, count(*) FROM messages WHERE author = 'agent' AND record IS NOT NULL"
        " AND created_at >= now() - interval '1 hour' GROUP BY channel"
    ),
    "disagreements": f"SELECT count(*) FROM messages WHERE {_DISAGREEING}",
    "new rows since the last refresh": (
        "SELECT channel, direction, count(*) FROM messages WHERE seq > 19990 AND seq <= 20000"
        " GROUP BY 1, 2"
    ),
}


async def test_monitor_queries_use_indexes(pg_pool: AsyncConnectionPool[Any]) -> None:
    plans: dict[str, list[tuple[str, str]]] = {}
    async with pg_pool.connection() as conn:
        await conn.execute(_POPULATE.encode())
        for name, query in MONITOR_QUERIES.items():
            cursor = await conn.execute(f"EXPLAIN (FORMAT JSON) {query}".encode())
            row = await cursor.fetchone()
            assert row is not None
            plan = row[0] if isinstance(row[0], list) else json.loads(row[0])
            plans[name] = _scans(plan[0]["Plan"])
    seq_scans = {
        n: s
        for n, s in plans.items()
        if any(node == "Seq Scan" and rel == "messages" for node, rel in s)
    }
    assert seq_scans == {}, plans
