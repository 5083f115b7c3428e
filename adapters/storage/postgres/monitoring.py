"""PostgresOperations: the operations snapshot from SQL aggregates.

Totals (messages, escalations, tokens and cost, rule evaluation time) are counted
incrementally by `messages.seq`: each call counts only the rows added since the last, so a
call stays cheap however large the table grows. A row is counted one call after it was
first seen (`settle`): a transaction that drew a lower seq but committed later is then
still counted. The window figures, the queue, the dead letters and the disagreements are
read afresh each time through the indexes of migration 0012.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from adapters.storage.postgres.pool import connection
from fte_core.clock import as_utc
from fte_core.models import Channel, Direction
from fte_core.monitoring import (
    DISAGREEMENT,
    RULE_BUCKETS,
    RULE_STAGES,
    ChannelUsage,
    ChannelWindow,
    MessageCount,
    QueueDepth,
    ReasonCount,
    RuleTiming,
    Snapshot,
)

_RANGE = "seq > %(lo)s AND seq <= %(hi)s"
_AGENT = f"{_RANGE} AND author = 'agent' AND record IS NOT NULL"
# the partial index's own predicate, as a literal, so the planner can match it
_DISAGREEING = (
    f"((record -> 'input_decision' ->> 'error') LIKE '{DISAGREEMENT}%'"
    f" OR (record -> 'output_decision' ->> 'error') LIKE '{DISAGREEMENT}%')"
)
_BUCKETS = ", ".join(f"count(*) FILTER (WHERE v <= {bound!r})" for bound in RULE_BUCKETS)


@dataclass(slots=True)
class _Totals:
    counted_to: int = 0  # rows with seq <= this are in the totals
    seen_to: int = 0  # the highest seq seen at the last call: counted at the next
    messages: Counter[tuple[Channel, Direction]] = field(default_factory=Counter)
    escalations: Counter[tuple[Channel, str]] = field(default_factory=Counter)
    usage: dict[Channel, tuple[int, int, float]] = field(default_factory=dict)
    rules: dict[str, tuple[tuple[int, ...], int, float]] = field(default_factory=dict)


class PostgresOperations:
    def __init__(self, pool: AsyncConnectionPool[Any], *, settle: bool = True) -> None:
        self._pool = pool
        self._settle = settle
        self._totals = _Totals()
        self._lock = asyncio.Lock()

    async def snapshot(self, now: datetime, window: timedelta) -> Snapshot:
        now = as_utc(now, "now")
        async with self._lock, connection(self._pool, "read operations figures") as conn:
            await self._count_new(conn)
            totals = self._totals
            return Snapshot(
                taken_at=now,
                window_seconds=window.total_seconds(),
                messages=tuple(
                    MessageCount(channel=c, direction=d, count=n)
                    for (c, d), n in sorted(totals.messages.items())
                ),
                escalations=tuple(
                    ReasonCount(channel=c, reason=r, count=n)
                    for (c, r), n in sorted(totals.escalations.items())
                ),
                usage=tuple(
                    ChannelUsage(channel=c, prompt_tokens=p, completion_tokens=k, cost_usd=u)
                    for c, (p, k, u) in sorted(totals.usage.items())
                ),
                rule_timings=tuple(
                    RuleTiming(stage=s, buckets=b, count=n, sum_seconds=t)
                    for s, (b, n, t) in ((s, totals.rules[s]) for s in RULE_STAGES)
                ),
                queues=await _queues(conn, now),
                dead_letters=await _scalar(conn, "SELECT count(*) FROM dead_letters"),
                disagreements=await _disagreements(conn, None),
                recent_disagreements=await _disagreements(conn, now - window),
                channels=await _windows(conn, now - window),
            )

    async def _count_new(self, conn: psycopg.AsyncConnection[Any]) -> None:
        totals = self._totals
        newest = await _scalar(conn, "SELECT coalesce(max(seq), 0) FROM messages")
        upto = totals.seen_to if self._settle else newest
        totals.seen_to = newest
        if not totals.rules:
            totals.rules = {s: ((0,) * len(RULE_BUCKETS), 0, 0.0) for s in RULE_STAGES}
        if upto <= totals.counted_to:
            return
        span = {"lo": totals.counted_to, "hi": upto}
        for channel, direction, n in await _rows(
            conn,
            f"SELECT channel, direction, count(*) FROM messages WHERE {_RANGE} GROUP BY 1, 2",
            span,
        ):
            totals.messages[(Channel(channel), Direction(direction))] += n
        for channel, reason, n in await _rows(
            conn,
            "SELECT channel, coalesce(record -> 'reasons' ->> 0, record ->> 'escalation_reason',"
            f" 'unknown'), count(*) FROM messages WHERE {_AGENT}"
            " AND record ->> 'action' = 'escalate' GROUP BY 1, 2",
            span,
        ):
            totals.escalations[(Channel(channel), reason)] += n
        for channel, prompt, completion, cost in await _rows(
            conn,
            "SELECT channel, sum((record -> 'usage' ->> 'prompt_tokens')::bigint),"
            " sum((record -> 'usage' ->> 'completion_tokens')::bigint),"
            f" sum((record -> 'usage' ->> 'cost_usd')::float8) FROM messages WHERE {_AGENT}"
            " GROUP BY 1",
            span,
        ):
            p, k, u = totals.usage.get(Channel(channel), (0, 0, 0.0))
            totals.usage[Channel(channel)] = (p + (prompt or 0), k + (completion or 0), u + cost)
        for stage in RULE_STAGES:
            await self._count_stage(conn, stage, span)
        totals.counted_to = upto

    async def _count_stage(
        self, conn: psycopg.AsyncConnection[Any], stage: str, span: dict[str, int]
    ) -> None:
        (row,) = await _rows(
            conn,
            f"SELECT {_BUCKETS}, count(v), coalesce(sum(v), 0) FROM"
            f" (SELECT (record -> 'latency_ms' ->> %(stage)s)::float8 / 1000 AS v"
            f" FROM messages WHERE {_AGENT}) t WHERE v IS NOT NULL",
            {**span, "stage": stage},
        )
        buckets, count, seconds = self._totals.rules[stage]
        added = tuple(int(n) for n in row[: len(RULE_BUCKETS)])
        self._totals.rules[stage] = (
            tuple(a + b for a, b in zip(buckets, added, strict=True)),
            count + int(row[-2]),
            seconds + float(row[-1]),
        )


async def _rows(
    conn: psycopg.AsyncConnection[Any], query: str, params: dict[str, Any] | None = None
) -> list[tuple[Any, ...]]:
    cursor = await conn.execute(query.encode(), params)
    return await cursor.fetchall()


async def _scalar(
    conn: psycopg.AsyncConnection[Any], query: str, params: dict[str, Any] | None = None
) -> int:
    (row,) = await _rows(conn, query, params)
    return int(row[0])


async def _disagreements(conn: psycopg.AsyncConnection[Any], since: datetime | None) -> int:
    """Rare rows, found through their partial index (migration 0012)."""
    return await _scalar(
        conn,
        f"SELECT count(*) FROM messages WHERE {_DISAGREEING.replace('%', '%%')}"
        " AND (%(since)s::timestamptz IS NULL OR created_at >= %(since)s)",
        {"since": since},
    )


async def _queues(conn: psycopg.AsyncConnection[Any], now: datetime) -> tuple[QueueDepth, ...]:
    found = await _rows(
        conn,
        "SELECT topic, count(*), min(created_at) FROM outbox WHERE sent_at IS NULL"
        " GROUP BY topic ORDER BY topic",
    )
    return tuple(
        QueueDepth(
            topic=topic, depth=depth, oldest_seconds=max(0.0, (now - oldest).total_seconds())
        )
        for topic, depth, oldest in found
    )


async def _windows(
    conn: psycopg.AsyncConnection[Any], since: datetime
) -> tuple[ChannelWindow, ...]:
    recent = {
        Channel(channel): (replies, escalations, p95)
        for channel, replies, escalations, p95 in await _rows(
            conn,
            "SELECT r.channel, count(*),"
            " count(*) FILTER (WHERE r.record ->> 'action' = 'escalate'),"
            " percentile_disc(0.95) WITHIN GROUP (ORDER BY"
            "   greatest(0, extract(epoch FROM r.created_at - i.created_at))::float8)"
            " FROM messages r JOIN messages i ON i.id = r.in_reply_to"
            " WHERE r.author = 'agent' AND r.record IS NOT NULL AND r.created_at >= %(since)s"
            " GROUP BY r.channel",
            {"since": since},
        )
    }
    last = dict(
        await _rows(
            conn,
            "SELECT c, (SELECT max(created_at) FROM messages m"
            "           WHERE m.direction = 'inbound' AND m.channel = c)"
            " FROM unnest(%(channels)s::text[]) AS c",
            {"channels": [c.value for c in Channel]},
        )
    )
    found: list[ChannelWindow] = []
    for channel in Channel:
        replies, escalations, p95 = recent.get(channel, (0, 0, None))
        found.append(
            ChannelWindow(
                channel=channel,
                replies=replies,
                escalations=escalations,
                latency_p95_seconds=p95,
                last_inbound_at=last.get(channel.value),
            )
        )
    return tuple(found)
