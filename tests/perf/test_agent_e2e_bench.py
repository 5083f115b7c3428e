"""End to end through the real agent (SPEC 11; issue 7): intake -> reply stored.

Run: .venv/bin/pytest -q -s -p no:cacheprovider tests/perf/test_agent_e2e_bench.py
(not part of `make test`; FTE_BENCH_E2E_N, FTE_BENCH_RUNS, FTE_BENCH_BUSES, FTE_BENCH_CASES
and FTE_BENCH_EMBEDDER override).

Each case bootstraps the service's composition root on the embedded PostgreSQL with one
bus, submits N messages through `Agent.submit` (the intake path: inbound message and its
event in one transaction; 1,000 customers, 20 submissions at a time) while one worker in
the same process (`run_worker` + `event_handler`, as `fte worker` runs them) consumes
`fte.inbound` and runs the whole pipeline: input rules, retrieval with the configured
embedder, the responder, output rules, the reply stored. Latency is the stored reply's
`created_at` minus the inbound message's, both from the database clock; throughput is N
over the time from the first submission to the last reply stored.

Responders: the offline responder (instant: no model), and the same behind a 500 ms sleep
(a model call), where the figure of interest is how many conversations one worker keeps
in flight. Baseline in the same run, `direct`: the same submissions answered in the
submitting task (`Agent.handle_stored` right after `submit`, 20 at a time), no queue.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest
from psycopg_pool import AsyncConnectionPool

from fte_core import events
from fte_core.models import Channel, InboundMessage
from fte_core.offline import OfflineResponder
from fte_core.ports import Answer, AnswerRequest
from fte_core.testing.responder import FunctionResponder
from service.bootstrap import bootstrap
from service.handlers import event_handler
from service.settings import EmbedderKind, Settings
from service.worker import WorkerHealth, run_worker

pytestmark = [pytest.mark.postgres, pytest.mark.kafka, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
N = int(os.environ.get("FTE_BENCH_E2E_N", "10000"))
SLOW_N = min(N, 2_000)
RUNS = int(os.environ.get("FTE_BENCH_RUNS", "3"))
BUSES = os.environ.get("FTE_BENCH_BUSES", "direct,postgres,kafka").split(",")
# FTE_BENCH_EMBEDDER=hashing separates the queue and pipeline from the MiniLM model's CPU
EMBEDDER: EmbedderKind = "hashing" if os.getenv("FTE_BENCH_EMBEDDER") == "hashing" else "minilm"
CUSTOMERS = 1_000
AT_ONCE = 20
QUESTIONS = (
    "how do I reset my password?",
    "how do I invite a guest to a project?",
    "can I export my tasks to CSV?",
    "how do I set up a recurring task?",
    "how do I connect Slack?",
    "where do I change my notification settings?",
)
CRM_TABLES = (
    "customers, customer_identifiers, merge_candidates, conversations, tickets, messages,"
    " outbox, dead_letters, processed_messages, agent_metrics"
)


class Result(msgspec.Struct, frozen=True, kw_only=True):
    bus: str
    responder: str
    n: int
    seconds: float
    p50_ms: float
    p99_ms: float
    max_in_flight: int
    cpu_ms: dict[str, float]  # CPU time per message, by process group

    @property
    def rate(self) -> float:
        return self.n / self.seconds


def cpu_seconds() -> dict[str, float]:
    """CPU time used so far by this process (intake + worker + agent), the PostgreSQL
    server's processes and the broker's, read from /proc (utime + stime, clock ticks)."""
    tick = os.sysconf("SC_CLK_TCK")
    totals = {"agent": 0.0, "postgres": 0.0, "broker": 0.0}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # the process ended meanwhile
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        used = (int(fields[11]) + int(fields[12])) / tick
        if int(entry.name) == os.getpid():
            totals["agent"] += used
        elif name in ("postgres", "postmaster"):
            totals["postgres"] += used
        elif "tansu" in name:
            totals["broker"] += used
    return totals


def slow_offline(delay: float) -> FunctionResponder:
    offline = OfflineResponder()

    async def answer(request: AnswerRequest) -> Answer:
        await asyncio.sleep(delay)
        return await offline.answer(request)

    return FunctionResponder(answer, name="offline+500ms")


def message(n: int) -> InboundMessage:
    customer = n % CUSTOMERS
    return InboundMessage(
        channel=Channel.EMAIL,
        provider_message_id=f"bench-{n}",
        text=QUESTIONS[n % len(QUESTIONS)],
        subject="Question",
        received_at=datetime.now(UTC),
        sender_email=f"customer{customer}@example.com",
        sender_name=f"Customer {customer}",
    )


async def reset(pool: AsyncConnectionPool[Any]) -> None:
    async with pool.connection() as conn:
        await conn.execute(f"TRUNCATE {CRM_TABLES} RESTART IDENTITY CASCADE")


async def replies(pool: AsyncConnectionPool[Any]) -> int:
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT count(*) FROM messages WHERE direction = 'outbound' AND author = 'agent'"
        )
        row = await cursor.fetchone()
    assert row is not None
    return int(row[0])


async def latencies(pool: AsyncConnectionPool[Any]) -> tuple[float, float, int, int]:
    """(p50 ms, p99 ms, replies, most replies to one message) from the database."""
    async with pool.connection() as conn:
        cursor = await conn.execute(
            """SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms),
                      percentile_cont(0.99) WITHIN GROUP (ORDER BY ms), count(*),
                      (SELECT coalesce(max(c), 0) FROM (SELECT count(*) AS c FROM messages
                        WHERE direction = 'outbound' AND author = 'agent'
                        GROUP BY in_reply_to) x)
               FROM (SELECT extract(epoch FROM o.created_at - i.created_at) * 1000 AS ms
                     FROM messages o JOIN messages i ON i.id = o.in_reply_to
                     WHERE o.direction = 'outbound' AND o.author = 'agent') t"""
        )
        row = await cursor.fetchone()
    assert row is not None
    return float(row[0]), float(row[1]), int(row[2]), int(row[3])


async def measure(
    pool: AsyncConnectionPool[Any],
    base: Settings,
    bus: str,
    n: int,
    delay: float,
    concurrency: int,
) -> Result:
    await reset(pool)
    run = uuid.uuid4().hex[:8]
    settings = msgspec.structs.replace(
        base,
        bus=bus,
        kafka_topic_prefix=f"e{run}.",
        kafka_group=f"e2e{run}",
        worker_concurrency=concurrency,
    )
    responder = slow_offline(delay) if delay else OfflineResponder()
    direct = bus == "direct"
    if direct:
        settings = msgspec.structs.replace(settings, bus="postgres")
    runtime = await bootstrap(
        settings, responder=responder, ingest=False, consume=() if direct else (events.INBOUND,)
    )
    stop = asyncio.Event()
    health = WorkerHealth()
    tasks: list[asyncio.Task[object]] = []
    if not direct:
        assert runtime.buses.consumer is not None
        worker = run_worker(
            runtime.buses.consumer,
            event_handler(runtime.agent, runtime.outbound),
            stop=stop,
            concurrency=concurrency,
            health=health,
        )
        tasks.append(asyncio.create_task(worker))
    if runtime.buses.relay is not None:
        tasks.append(asyncio.create_task(runtime.buses.relay.run(stop)))

    async def intake(k: int) -> None:
        turn = await runtime.agent.submit(message(k))
        if direct:
            await runtime.agent.handle_stored(turn.inbound.id)

    cpu_before = cpu_seconds()
    began = time.perf_counter()
    try:
        for start in range(0, n, AT_ONCE):
            await asyncio.gather(*(intake(k) for k in range(start, min(n, start + AT_ONCE))))
        deadline = time.monotonic() + max(120.0, n / 5)
        while await replies(pool) < n:
            assert time.monotonic() < deadline, f"{bus}: {await replies(pool)} of {n} answered"
            await asyncio.sleep(0.05)
        seconds = time.perf_counter() - began
        cpu = {k: v - cpu_before.get(k, 0.0) for k, v in cpu_seconds().items()}
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        await runtime.aclose()
    p50, p99, count, most = await latencies(pool)
    assert (count, most) == (n, 1), "every message answered exactly once"
    return Result(
        bus=bus,
        responder=responder.name,
        n=n,
        seconds=seconds,
        p50_ms=p50,
        p99_ms=p99,
        max_in_flight=health.max_in_flight,
        cpu_ms={k: v * 1000 / n for k, v in cpu.items()},
    )


def report(results: list[Result]) -> dict[tuple[str, str], float]:
    rates: dict[tuple[str, str], float] = {}
    print()
    head = ("bus", "responder", "n", "msg/s", "p50 ms", "p99 ms", "flight")
    print("{:<10}{:<15}{:>7}{:>8}{:>9}{:>9}{:>8}".format(*head))
    for key in sorted({(r.bus, r.responder) for r in results}, key=lambda k: (k[1], k[0])):
        rs = [r for r in results if (r.bus, r.responder) == key]
        rates[key] = statistics.median(r.rate for r in rs)
        print(
            f"{key[0]:<10}{key[1]:<15}{rs[0].n:>7}{rates[key]:>8.0f}"
            f"{statistics.median(r.p50_ms for r in rs):>9.0f}"
            f"{statistics.median(r.p99_ms for r in rs):>9.0f}"
            f"{max(r.max_in_flight for r in rs):>8}"
        )
    cores = os.cpu_count() or 1
    print(f"CPU ms per message (budget for 200 msg/s on {cores} cores: {cores * 5:.0f} ms)")
    for r in results:
        parts = "  ".join(f"{k} {v:.1f}" for k, v in r.cpu_ms.items())
        print(f"  {r.bus:<10}{r.responder:<15}{parts}  total {sum(r.cpu_ms.values()):.1f}")
    for bus in ("postgres", "kafka"):
        if (bus, "offline") in rates and ("direct", "offline") in rates:
            ratio = rates[(bus, "offline")] / rates[("direct", "offline")]
            print(f"{bus}: {ratio:.2f} x direct (no queue), offline responder")
    return rates


async def test_intake_to_reply_stored(
    pg_url: str, pg_pool: AsyncConnectionPool[Any], kafka_bootstrap: str, tmp_path: Path
) -> None:
    base = Settings(
        database_url=pg_url,
        data_dir=str(tmp_path),
        rules_dir=str(ROOT / "rules"),
        context_dir=str(ROOT / "context"),
        model_dir=os.environ.get("FTE_MODEL_DIR", str(ROOT / ".fte" / "models")),
        kafka_bootstrap=kafka_bootstrap,
        kafka_idempotent=False,  # Tansu's memory storage lacks InitProducerId
        embedder=EMBEDDER,
    )
    warm = await bootstrap(base, ingest=True)  # the knowledge base, once
    await warm.aclose()
    results: list[Result] = []
    cases = os.environ.get("FTE_BENCH_CASES", "instant,slow").split(",")
    for _ in range(RUNS):
        for bus in BUSES:
            if "instant" in cases:
                results.append(await measure(pg_pool, base, bus, N, 0.0, concurrency=64))
            if "slow" in cases and bus != "direct":
                results.append(await measure(pg_pool, base, bus, SLOW_N, 0.5, concurrency=500))
    report(results)
