"""Real worker processes: SIGKILL mid-stream loses and repeats nothing; SIGTERM drains.

The worker is tests/integration/bus_worker.py; its handler claims each event id in
`processed_messages` in the transaction that writes the effect. 500 events go through
the PostgreSQL queue, or through the outbox and its relay into Kafka (Tansu).
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool

from adapters.bus.postgres import enqueue_many
from fte_core import events
from fte_core.models import Channel
from tests.integration.bus_worker import SCHEMA

ROOT = Path(__file__).resolve().parents[2]
TOTAL = 500


class Run:
    """One test's bus: where the worker reads from, and how to start one."""

    def __init__(self, bus: str, db: str, pool: AsyncConnectionPool[Any], tmp: Path) -> None:
        self.bus = bus
        self.db = db
        self.pool = pool
        self.tmp = tmp
        self.kafka = ""
        self.prefix = f"c{uuid.uuid4().hex[:8]}."
        self.group = f"g{uuid.uuid4().hex[:8]}"
        self.logs: list[Path] = []

    def worker(
        self, *, delay: float = 0.0, concurrency: int = 16, log_calls: bool = True
    ) -> subprocess.Popen[bytes]:
        log = self.tmp / f"worker-{len(self.logs)}.log"
        self.logs.append(log)
        args = [sys.executable, "-m", "tests.integration.bus_worker", "--bus", self.bus]
        args += ["--db", self.db, "--kafka", self.kafka, "--prefix", self.prefix]
        args += ["--group", self.group, "--delay", str(delay), "--concurrency", str(concurrency)]
        args += [] if log_calls else ["--no-calls"]
        with log.open("wb") as out:
            return subprocess.Popen(args, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)

    async def scalar(self, query: str) -> int:
        async with self.pool.connection() as conn:
            cursor = await conn.execute(query)
            row = await cursor.fetchone()
        assert row is not None
        return int(row[0])

    async def wait_for(self, query: str, at_least: int, proc: subprocess.Popen[bytes]) -> int:
        end = time.monotonic() + 90
        while time.monotonic() < end:
            value = await self.scalar(query)
            if value >= at_least:
                return value
            assert proc.poll() is None, f"worker died: {self.logs[-1].read_text()}"
            await asyncio.sleep(0.05)
        raise AssertionError(f"timed out waiting for {query} >= {at_least}: {value}")

    def log_text(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in self.logs)


async def publish(run: Run, count: int = TOTAL) -> None:
    rows = [
        (
            events.INBOUND,
            f"cust-{n % 200}",
            events.encode(
                events.InboundEvent(
                    message_id=f"m{n}", channel=Channel.WHATSAPP, provider_message_id=f"p{n}"
                )
            ),
        )
        for n in range(count)
    ]
    async with run.pool.connection() as conn, conn.transaction():
        await enqueue_many(conn, rows)
    if run.bus == "kafka":
        await relay_all(run)


async def relay_all(run: Run) -> None:
    from adapters.bus.kafka import KafkaBus, KafkaConfig, ensure_topics
    from adapters.bus.relay import OutboxRelay

    config = KafkaConfig(
        bootstrap=run.kafka, topic_prefix=run.prefix, partitions=3, idempotent=False
    )
    await ensure_topics(config)
    producer = KafkaBus(config)
    await producer.start()
    try:
        relay = OutboxRelay(run.pool, producer)
        while await relay.relay_once():
            pass
    finally:
        await producer.stop()
    assert await run.scalar("SELECT count(*) FROM outbox WHERE sent_at IS NULL") == 0


def kill(proc: subprocess.Popen[bytes], sig: signal.Signals) -> int:
    proc.send_signal(sig)
    try:
        return proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.fixture(
    params=[
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("kafka", marks=[pytest.mark.postgres, pytest.mark.kafka]),
    ]
)
def bus_kind(request: pytest.FixtureRequest) -> str:
    if request.param == "kafka":
        request.getfixturevalue("kafka_bootstrap")
    return str(request.param)


@pytest.fixture
async def run(
    bus_kind: str, pg_url: str, pg_pool: AsyncConnectionPool[Any], tmp_path: Path, request: Any
) -> Run:
    async with pg_pool.connection() as conn:
        await conn.execute(SCHEMA)
        await conn.execute("TRUNCATE bus_effects, bus_calls")
    r = Run(bus_kind, pg_url, pg_pool, tmp_path)
    if bus_kind == "kafka":
        r.kafka = request.getfixturevalue("kafka_bootstrap")
    return r


async def assert_exactly_once(run: Run) -> None:
    async with run.pool.connection() as conn:
        cursor = await conn.execute("SELECT n, count(*) FROM bus_effects GROUP BY n")
        effects = dict(await cursor.fetchall())
    assert sorted(effects) == list(range(TOTAL)), "a message was lost"
    assert set(effects.values()) == {1}, "a message had two effects"


async def test_sigkill_mid_stream_then_a_new_worker_loses_and_repeats_nothing(run: Run) -> None:
    await publish(run)
    first = run.worker(delay=0.05)  # always some events between their call and their ack
    done = await run.wait_for("SELECT count(*) FROM bus_effects", 150, first)
    assert kill(first, signal.SIGKILL) == -signal.SIGKILL
    killed_at = await run.scalar("SELECT count(*) FROM bus_effects")
    assert done <= killed_at < TOTAL, "the kill was not mid-stream"
    second = run.worker(delay=0.0)
    await run.wait_for("SELECT count(DISTINCT n) FROM bus_effects", TOTAL, second)
    assert kill(second, signal.SIGTERM) == 0, run.log_text()
    await assert_exactly_once(run)
    # The killed worker's unfinished events really were delivered again:
    calls = await run.scalar("SELECT count(*) FROM bus_calls")
    assert calls > TOTAL
    if run.bus == "postgres":
        assert await run.scalar("SELECT count(*) FROM outbox") == 0
        assert await run.scalar("SELECT count(*) FROM dead_letters") == 0


async def test_sigterm_finishes_in_flight_work_commits_and_exits_0(run: Run) -> None:
    await publish(run)
    worker = run.worker(delay=0.3, concurrency=16)
    await run.wait_for("SELECT count(*) FROM bus_effects", 40, worker)
    started = time.monotonic()
    assert kill(worker, signal.SIGTERM) == 0, run.log_text()
    assert time.monotonic() - started < 15
    assert "drained" in run.log_text()
    effects = await run.scalar("SELECT count(*) FROM bus_effects")
    calls = await run.scalar("SELECT count(*) FROM bus_calls")
    assert calls == effects < TOTAL  # every handler that started also finished
    if run.bus == "postgres":
        assert await run.scalar("SELECT count(*) FROM outbox WHERE claimed_by IS NOT NULL") == 0
        assert await run.scalar("SELECT count(*) FROM outbox") == TOTAL - effects
    # What was handled was committed: a new worker does only the rest, each once.
    second = run.worker(delay=0.0)
    await run.wait_for("SELECT count(DISTINCT n) FROM bus_effects", TOTAL, second)
    assert kill(second, signal.SIGTERM) == 0, run.log_text()
    await assert_exactly_once(run)
    if run.bus == "postgres":
        assert await run.scalar("SELECT count(*) FROM bus_calls") == TOTAL
    # Kafka commits a partition only up to its oldest unfinished record: events of other
    # keys finished past that gap are delivered again after a stop, and the claim in
    # processed_messages skips them (effects stay exactly once, checked above).


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.mark.slow
@pytest.mark.postgres
async def test_a_worker_memory_stays_flat_over_20000_messages(
    pg_url: str, pg_pool: AsyncConnectionPool[Any], tmp_path: Path
) -> None:
    total = 20_000
    async with pg_pool.connection() as conn:
        await conn.execute(SCHEMA)
        await conn.execute("TRUNCATE bus_effects, bus_calls")
    run = Run("postgres", pg_url, pg_pool, tmp_path)
    await publish(run, total)
    worker = run.worker(concurrency=32, log_calls=False)
    query = "SELECT count(*) FROM bus_effects"
    await run.wait_for(query, total // 4, worker)  # warm-up: pools, caches, arenas
    warm = _rss_kib(worker.pid)
    samples = [warm]
    for mark in (total // 2, 3 * total // 4, total):
        await run.wait_for(query, mark, worker)
        samples.append(_rss_kib(worker.pid))
    assert kill(worker, signal.SIGTERM) == 0, run.log_text()
    print(f"worker RSS KiB after warm-up and at 50/75/100 %: {samples}")
    assert all(abs(s - warm) <= 0.05 * warm for s in samples), samples
