"""The operations snapshot and its alerts on seeded conversations, over the in-memory
reader and PostgreSQL (which must agree), and the PostgreSQL reader's incremental totals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool

from fte_core.identity import identifiers_for
from fte_core.models import (
    Channel,
    Decision,
    DecisionRecord,
    Direction,
    InboundMessage,
    Reply,
    Usage,
)
from fte_core.monitoring import Snapshot, Thresholds, active_alerts
from fte_core.ports import CrmStore, OperationsReader, OutboundDraft
from fte_core.testing.monitoring import MemoryOperations
from fte_core.testing.store import InMemoryStore

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
DISAGREEING = "durable_rules fired ['human-request-explicit'], reference fired []"


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


class Seeder:
    def __init__(self, store: CrmStore, clock: Clock) -> None:
        self.store, self.clock, self.n = store, clock, 0

    async def turn(
        self,
        channel: Channel,
        at: datetime,
        wait: float,
        *,
        escalate: str | None = None,
        error: str | None = None,
        tokens: tuple[int, int] = (0, 0),
        cost: float = 0.0,
    ) -> None:
        """A customer message at `at`, answered `wait` seconds later."""
        self.n += 1
        message = InboundMessage(
            channel=channel,
            provider_message_id=f"p-{self.n}",
            text=f"question {self.n}",
            received_at=at,
            sender_email=f"c{self.n}@example.com" if channel is not Channel.WHATSAPP else None,
            sender_phone=f"+1415555{self.n:04d}" if channel is Channel.WHATSAPP else None,
            subject="Help" if channel is Channel.EMAIL else None,
        )
        self.clock.now = at
        turn = await self.store.open_turn(
            message, identifiers_for(message), None, at, timedelta(hours=24)
        )
        self.clock.now = at + timedelta(seconds=wait)
        action = "escalate" if escalate else "answer"
        decision = Decision(
            stage="input",
            action="escalate" if escalate else "allow",
            reasons=(escalate,) if escalate else (),
            error=error,
        )
        record = DecisionRecord(
            message_id=turn.inbound.id,
            channel=channel,
            ruleset_version="v1",
            input_decision=decision,
            sentiment=0.0,
            usage=Usage(prompt_tokens=tokens[0], completion_tokens=tokens[1], cost_usd=cost),
            latency_ms={"input_rules": 0.3, "retrieve": 4.0, "output_rules": 0.02},
            action=action,
            escalation_reason=escalate,
            reasons=(escalate,) if escalate else (),
        )
        await self.store.save_outbound(
            OutboundDraft(
                conversation_id=turn.thread.conversation.id,
                channel=channel,
                in_reply_to=turn.inbound.id,
                reply=Reply(channel=channel, parts=(f"answer {self.n}",)),
                record=record,
                usage=record.usage,
            )
        )


async def seed(store: CrmStore, clock: Clock) -> None:
    s = Seeder(store, clock)
    recent = NOW - timedelta(minutes=30)
    # web form: 5 replies in the window, waits 1..5 s (p95 5 s), 2 hand-overs (40 %)
    for i, wait in enumerate((1.0, 1.0, 2.0, 2.0, 5.0)):
        reason = {3: "human_request", 4: "refund"}.get(i)
        await s.turn(Channel.WEB_FORM, recent + timedelta(minutes=i), wait, escalate=reason)
    # email: 2 replies, fast; one hand-over (50 %) but too few replies to judge; one
    # decision on which the evaluators disagreed; the model's tokens and cost
    await s.turn(Channel.EMAIL, recent, 0.5, tokens=(900, 120), cost=0.0021)
    await s.turn(
        Channel.EMAIL, recent, 1.0, escalate="policy_error", error=DISAGREEING, tokens=(10, 0)
    )
    # whatsapp: one message three hours ago, nothing since
    await s.turn(Channel.WHATSAPP, NOW - 3 * HOUR, 0.8)


@pytest.fixture
def clock() -> Clock:
    return Clock()


async def test_the_memory_reader_on_seeded_data(clock: Clock) -> None:
    store = InMemoryStore(clock=clock)
    await seed(store, clock)
    snapshot = await MemoryOperations(store, dead_letters=lambda: 2).snapshot(NOW, HOUR)
    check_figures(snapshot)
    assert snapshot.dead_letters == 2
    names = {(a.name, a.channel) for a in active_alerts(snapshot, Thresholds())}
    assert names == {
        ("FteDeadLetters", None),
        ("FtePolicyDisagreement", None),
        ("FteReplyLatencyHigh", Channel.WEB_FORM),
        ("FteEscalationRateHigh", Channel.WEB_FORM),
        ("FteChannelIdle", Channel.WHATSAPP),
    }


def check_figures(snapshot: Snapshot) -> None:
    windows = {w.channel: w for w in snapshot.channels}
    web, email, whatsapp = (
        windows[Channel.WEB_FORM],
        windows[Channel.EMAIL],
        windows[Channel.WHATSAPP],
    )
    assert (web.replies, web.escalations, web.latency_p95_seconds) == (5, 2, 5.0)
    assert web.escalation_rate == pytest.approx(0.4)
    assert (email.replies, email.escalations, email.latency_p95_seconds) == (2, 1, 1.0)
    assert (whatsapp.replies, whatsapp.latency_p95_seconds) == (0, None)  # outside the window
    assert whatsapp.last_inbound_at == NOW - 3 * HOUR
    counts = {(m.channel, m.direction): m.count for m in snapshot.messages}
    assert counts == {
        (Channel.EMAIL, Direction.INBOUND): 2,
        (Channel.EMAIL, Direction.OUTBOUND): 2,
        (Channel.WEB_FORM, Direction.INBOUND): 5,
        (Channel.WEB_FORM, Direction.OUTBOUND): 5,
        (Channel.WHATSAPP, Direction.INBOUND): 1,
        (Channel.WHATSAPP, Direction.OUTBOUND): 1,
    }
    reasons = {(e.channel, e.reason): e.count for e in snapshot.escalations}
    assert reasons == {
        (Channel.EMAIL, "policy_error"): 1,
        (Channel.WEB_FORM, "human_request"): 1,
        (Channel.WEB_FORM, "refund"): 1,
    }
    usage = {u.channel: u for u in snapshot.usage}
    assert (usage[Channel.EMAIL].prompt_tokens, usage[Channel.EMAIL].completion_tokens) == (
        910,
        120,
    )
    assert usage[Channel.EMAIL].cost_usd == pytest.approx(0.0021)
    assert usage[Channel.WEB_FORM].cost_usd == 0.0
    timings = {t.stage: t for t in snapshot.rule_timings}
    assert timings["input_rules"].count == 8
    assert timings["input_rules"].sum_seconds == pytest.approx(8 * 0.0003)
    assert timings["input_rules"].buckets[:3] == (0, 0, 8)  # 0.3 ms: in the 0.5 ms bucket
    assert timings["output_rules"].buckets[0] == 8
    assert (snapshot.disagreements, snapshot.recent_disagreements) == (1, 1)


@pytest.mark.postgres
async def test_postgres_agrees_with_memory_and_reads_queue_and_dead_letters(
    pg_pool: AsyncConnectionPool[Any], clock: Clock
) -> None:
    from adapters.storage.postgres.monitoring import PostgresOperations
    from adapters.storage.postgres.store import PostgresStore

    store = PostgresStore(pg_pool, clock=clock)
    await seed(store, clock)
    async with pg_pool.connection() as conn:
        await conn.execute(
            "INSERT INTO dead_letters (topic, key, payload, attempts, error)"
            " VALUES ('fte.inbound', 'k', '\\x00', 5, 'boom')"
        )
        await conn.execute(
            "INSERT INTO outbox (topic, key, payload, created_at) VALUES"
            " ('fte.inbound', 'a', '\\x00', %s), ('fte.inbound', 'b', '\\x00', %s)",
            (NOW - timedelta(seconds=90), NOW - timedelta(seconds=10)),
        )
    reader = PostgresOperations(pg_pool, settle=False)
    snapshot = await reader.snapshot(NOW, HOUR)
    check_figures(snapshot)
    assert snapshot.dead_letters == 1
    (queue,) = snapshot.queues
    assert (queue.topic, queue.depth, queue.oldest_seconds) == ("fte.inbound", 2, 90.0)

    memory_store = InMemoryStore(clock=clock)
    await seed(memory_store, clock)
    memory = await MemoryOperations(memory_store, dead_letters=lambda: 1).snapshot(NOW, HOUR)
    assert _comparable(snapshot) == _comparable(memory)
    alerts = {(a.name, a.channel) for a in active_alerts(snapshot, Thresholds())}
    assert alerts == {(a.name, a.channel) for a in active_alerts(memory, Thresholds())}


def _comparable(snapshot: Snapshot) -> tuple[object, ...]:
    usage = tuple(
        (u.channel, u.prompt_tokens, u.completion_tokens, round(u.cost_usd, 9))
        for u in snapshot.usage
    )
    timings = tuple(
        (t.stage, t.buckets, t.count, round(t.sum_seconds, 9)) for t in snapshot.rule_timings
    )
    return (
        snapshot.messages,
        snapshot.escalations,
        usage,
        timings,
        snapshot.dead_letters,
        snapshot.disagreements,
        snapshot.recent_disagreements,
        snapshot.channels,
    )


@pytest.mark.postgres
async def test_postgres_totals_are_counted_once_and_settle_one_call_late(
    pg_pool: AsyncConnectionPool[Any], clock: Clock
) -> None:
    from adapters.storage.postgres.monitoring import PostgresOperations
    from adapters.storage.postgres.store import PostgresStore

    store = PostgresStore(pg_pool, clock=clock)
    reader: OperationsReader = PostgresOperations(pg_pool)  # settling, as in the service
    s = Seeder(store, clock)
    await s.turn(Channel.EMAIL, NOW - timedelta(minutes=5), 1.0)

    def inbound(snapshot: Snapshot) -> int:
        return sum(m.count for m in snapshot.messages if m.direction is Direction.INBOUND)

    first = await reader.snapshot(NOW, HOUR)
    assert inbound(first) == 0  # seen, counted at the next call
    assert sum(w.replies for w in first.channels) == 1  # the window is read afresh
    assert inbound(await reader.snapshot(NOW, HOUR)) == 1
    await s.turn(Channel.EMAIL, NOW - timedelta(minutes=4), 1.0, escalate="refund")
    await s.turn(Channel.WEB_FORM, NOW - timedelta(minutes=3), 1.0)
    assert inbound(await reader.snapshot(NOW, HOUR)) == 1
    settled = await reader.snapshot(NOW, HOUR)
    assert inbound(settled) == 3
    assert inbound(await reader.snapshot(NOW, HOUR)) == 3  # never twice
    assert [(e.reason, e.count) for e in settled.escalations] == [("refund", 1)]
    assert {t.stage: t.count for t in settled.rule_timings} == {
        "input_rules": 3,
        "output_rules": 3,
    }
