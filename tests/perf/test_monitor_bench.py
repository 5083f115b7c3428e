"""The monitor's cost: one refresh of the operations figures (PostgresOperations.snapshot)
over a populated messages table, beside a naive full recount measured in the same run.

Run: .venv/bin/pytest -q -s tests/perf/test_monitor_bench.py  (not part of `make test`)

The table holds 25,000 conversations of 4 customer messages each, every one answered by
the agent with a decision record (200,000 rows; 1 in 5 replies a hand-over; the last hour
holds ~1,000 replies). Measured: the first snapshot (counts every row once), then steady
refreshes (nothing new, and 200 new rows between refreshes), against the baseline
`SELECT channel, direction, count(*) ... GROUP BY` over the whole table that a
non-incremental monitor would run each time. Medians and p95 over 30 runs.
"""

from __future__ import annotations

import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool

from adapters.storage.postgres.monitoring import PostgresOperations

pytestmark = pytest.mark.postgres

CONVERSATIONS = 25_000
RUNS = 30
WINDOW = timedelta(hours=1)

_POPULATE = """
INSERT INTO customers (id, name, created_at)
SELECT md5('c' || i)::uuid, 'Customer ' || i, now() FROM generate_series(1, {n}) i;
INSERT INTO conversations (id, customer_id, channel, status, started_at, last_message_at)
SELECT md5('v' || i)::uuid, md5('c' || i)::uuid, 'email', 'open', now(), now()
FROM generate_series(1, {n}) i;
INSERT INTO messages (id, conversation_id, customer_id, channel, direction,
                      provider_message_id, content, delivery_status, created_at)
SELECT md5('m' || i || '-' || j)::uuid, md5('v' || i)::uuid, md5('c' || i)::uuid,
       (ARRAY['email', 'whatsapp', 'web_form'])[1 + i % 3], 'inbound', 'pm-' || i || '-' || j,
       'hello ' || j, 'received', now() - (i * 4 + j) * interval '1 second'
FROM generate_series(1, {n}) i, generate_series(1, 4) j;
INSERT INTO messages (id, conversation_id, customer_id, channel, direction, author,
                      in_reply_to, content, delivery_status, created_at, record)
SELECT md5('r' || m.id)::uuid, m.conversation_id, m.customer_id, m.channel, 'outbound',
       'agent', m.id, 'answer', 'sent', m.created_at + interval '1.5 seconds',
       jsonb_build_object(
         'action', CASE WHEN m.seq % 5 = 0 THEN 'escalate' ELSE 'answer' END,
         'reasons', CASE WHEN m.seq % 5 = 0 THEN '["human_request"]'::jsonb ELSE '[]' END,
         'usage', jsonb_build_object('prompt_tokens', 800, 'completion_tokens', 90,
                                     'cost_usd', 0.0004),
         'latency_ms', jsonb_build_object('input_rules', 0.3, 'output_rules', 0.05),
         'input_decision', jsonb_build_object('error', NULL))
FROM messages m WHERE m.direction = 'inbound';
ANALYZE;
"""


def _ms(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[max(0, round(0.95 * len(ordered)) - 1)]
    return f"median {statistics.median(ordered) * 1000:.2f} ms, p95 {p95 * 1000:.2f} ms"


async def _add_rows(pool: AsyncConnectionPool[Any], start: int, count: int) -> None:
    async with pool.connection() as conn:
        await conn.execute(
            "INSERT INTO messages (id, conversation_id, customer_id, channel, direction,"
            " provider_message_id, content, delivery_status, created_at)"
            " SELECT gen_random_uuid(), md5('v1')::uuid, md5('c1')::uuid, 'email', 'inbound',"
            " 'new-' || i, 'more', 'received', now() FROM generate_series(%s::int, %s::int) i",
            (start, start + count - 1),
        )


async def test_monitor_refresh_cost(pg_pool: AsyncConnectionPool[Any]) -> None:
    async with pg_pool.connection() as conn:
        started = time.perf_counter()
        await conn.execute(_POPULATE.format(n=CONVERSATIONS).encode())
        load = time.perf_counter() - started
    reader = PostgresOperations(pg_pool)
    now = datetime.now(UTC)

    started = time.perf_counter()
    await reader.snapshot(now, WINDOW)  # sees the rows
    first = await reader.snapshot(now, WINDOW)  # counts them all, once
    first_cost = time.perf_counter() - started
    assert sum(m.count for m in first.messages) == 8 * CONVERSATIONS

    steady: list[float] = []
    for _ in range(RUNS):
        started = time.perf_counter()
        await reader.snapshot(datetime.now(UTC), WINDOW)
        steady.append(time.perf_counter() - started)

    growing: list[float] = []
    for run in range(RUNS):
        await _add_rows(pg_pool, run * 200, 200)
        started = time.perf_counter()
        await reader.snapshot(datetime.now(UTC), WINDOW)
        growing.append(time.perf_counter() - started)

    baseline: list[float] = []
    async with pg_pool.connection() as conn:
        for _ in range(RUNS):
            started = time.perf_counter()
            cursor = await conn.execute(
                "SELECT channel, direction, count(*) FROM messages GROUP BY 1, 2"
            )
            await cursor.fetchall()
            baseline.append(time.perf_counter() - started)

    ratio = statistics.median(steady) / statistics.median(baseline)
    print(
        f"\nmonitor refresh over {8 * CONVERSATIONS:,} messages (loaded in {load:.1f} s):"
        f"\n  first snapshot (every row counted once): {first_cost * 1000:.0f} ms"
        f"\n  steady refresh, nothing new: {_ms(steady)}"
        f"\n  refresh with 200 new rows: {_ms(growing)}"
        f"\n  baseline full GROUP BY recount: {_ms(baseline)}"
        f"\n  steady refresh / baseline (medians): {ratio:.2f}"
    )
