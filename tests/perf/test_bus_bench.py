"""Event bus throughput and latency, one worker (SPEC 11: >= 200 msg/s through Kafka).

Run: .venv/bin/pytest -q -s tests/perf/test_bus_bench.py  (not part of `make test`)

For each bus a producer publishes N events (1,000 customer keys) while one in-process
worker (`service.worker.run_worker`) consumes them; the clock runs from the first publish
to the last ack. Latency is publish -> handler start, per event. Buses:
- memory: the in-process queue (the baseline the others are compared with, same run);
- postgres: the PostgreSQL queue (embedded server, durability off as in the test suite);
- kafka: events produced straight to Kafka (Tansu), consumed by the Kafka consumer;
- kafka+outbox: events written to the outbox table, moved by the relay, consumed from Kafka
  (the production path with PostgreSQL storage).
Cases: N=10,000 published at once with an instant handler (throughput; latency there is
mostly time waiting in the backlog); 2,000 with a 500 ms sleep (a model call: how many
events one worker keeps in flight, and the throughput that gives); 2,000 paced at 200/s
with an instant handler (latency below saturation).
Each case runs RUNS times; medians are reported.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import pytest
from psycopg_pool import AsyncConnectionPool

from adapters.bus.memory import MemoryBus
from adapters.bus.postgres import PostgresBus, enqueue_many
from adapters.bus.retry import RetryPolicy
from adapters.bus.wake import hint
from fte_core import events
from fte_core.models import Channel
from fte_core.ports import Delivery, EventConsumer
from service.worker import WorkerHealth, run_worker

pytestmark = [pytest.mark.postgres, pytest.mark.kafka, pytest.mark.slow]

RUNS = int(os.environ.get("FTE_BENCH_RUNS", "3"))
FAST_N = 10_000
SLOW_N = 2_000
PACED_N, PACE = 2_000, 200.0  # latency below saturation
KEYS = 1_000
BUSES = os.environ.get("FTE_BENCH_BUSES", "memory,postgres,kafka,kafka+outbox").split(",")
RETRY = RetryPolicy(max_attempts=5, backoff=0.1)


class Result(msgspec.Struct, frozen=True, kw_only=True):
    bus: str
    handler: str
    n: int
    seconds: float
    p50_ms: float
    p99_ms: float
    max_in_flight: int

    @property
    def rate(self) -> float:
        return self.n / self.seconds


def payload(n: int) -> bytes:
    return events.encode(
        events.InboundEvent(message_id=f"m{n}", channel=Channel.EMAIL, provider_message_id=str(n))
    )


class Setup:
    """Publish N events somewhere; hand back the consumer a worker reads them from."""

    def __init__(self, pool: AsyncConnectionPool[Any], bootstrap: str) -> None:
        self.pool = pool
        self.bootstrap = bootstrap
        self.cleanup: list[Callable[[], Awaitable[None]]] = []

    async def make(
        self, bus: str, concurrency: int
    ) -> tuple[EventConsumer, Callable[[list[int]], Awaitable[None]]]:
        if bus == "memory":
            memory = MemoryBus(RETRY)
            return memory.consumer([events.INBOUND]), self._put_memory(memory)
        if bus == "postgres":
            async with self.pool.connection() as conn:
                await conn.execute("TRUNCATE outbox")
            queue = PostgresBus(self.pool).consumer([events.INBOUND], retry=RETRY)
            return queue, self._put_outbox
        return await self._kafka(bus == "kafka+outbox")

    def _put_memory(self, memory: MemoryBus) -> Callable[[list[int]], Awaitable[None]]:
        async def put(numbers: list[int]) -> None:
            for n in numbers:
                memory.put(events.INBOUND, f"c{n % KEYS}", payload(n))

        return put

    async def _put_outbox(self, numbers: list[int]) -> None:
        rows = [(events.INBOUND, f"c{n % KEYS}", payload(n)) for n in numbers]
        async with self.pool.connection() as conn, conn.transaction():
            await enqueue_many(conn, rows)
        hint(self.pool).poke()  # as the store does after its commits

    async def _kafka(
        self, via_outbox: bool
    ) -> tuple[EventConsumer, Callable[[list[int]], Awaitable[None]]]:
        from adapters.bus.kafka import KafkaBus, KafkaConfig, ensure_topics
        from adapters.bus.kafka_consumer import KafkaConsumer
        from adapters.bus.relay import OutboxRelay

        run = uuid.uuid4().hex[:8]
        config = KafkaConfig(
            bootstrap=self.bootstrap,
            topic_prefix=f"b{run}.",
            partitions=6,
            group=f"bench{run}",
            idempotent=False,  # Tansu's memory storage lacks InitProducerId
            session_timeout_ms=1500,
        )
        await ensure_topics(config)
        producer = KafkaBus(config)
        await producer.start()
        self.cleanup.append(producer.stop)
        consumer = KafkaConsumer(config, [events.INBOUND], producer, retry=RETRY)
        await consumer.start()
        if via_outbox:
            async with self.pool.connection() as conn:
                await conn.execute("TRUNCATE outbox")
            relay = OutboxRelay(self.pool, producer, idle_poll=0.05)
            stop = asyncio.Event()
            task = asyncio.create_task(relay.run(stop))

            async def stop_relay() -> None:
                stop.set()
                await task

            self.cleanup.append(stop_relay)
            return consumer, self._put_outbox

        async def send(numbers: list[int]) -> None:
            acks = [
                await producer.send(events.INBOUND, f"c{n % KEYS}", payload(n)) for n in numbers
            ]
            await asyncio.gather(*acks)

        return consumer, send

    async def close(self) -> None:
        while self.cleanup:
            await self.cleanup.pop()()


async def measure(
    setup: Setup, bus: str, n: int, delay: float, concurrency: int, rate: float = 0.0
) -> Result:
    consumer, put = await setup.make(bus, concurrency)
    published: dict[int, float] = {}
    latencies: list[float] = []
    stop = asyncio.Event()

    async def handle(delivery: Delivery) -> None:
        event = events.decode(delivery.payload)
        assert isinstance(event, events.InboundEvent)
        latencies.append(time.perf_counter() - published[int(event.message_id[1:])])
        if delay:
            await asyncio.sleep(delay)
        if len(latencies) == n:
            stop.set()

    async def produce() -> None:
        """All at once (a backlog: throughput), or paced at `rate` (latency)."""
        step = 10 if rate else 200
        began = time.perf_counter()
        for start in range(0, n, step):
            if rate:
                await asyncio.sleep(max(0.0, began + start / rate - time.perf_counter()))
            numbers = list(range(start, min(n, start + step)))
            now = time.perf_counter()
            published.update((k, now) for k in numbers)
            await put(numbers)
            await asyncio.sleep(0)

    health = WorkerHealth()
    began = time.perf_counter()
    await asyncio.gather(
        produce(), run_worker(consumer, handle, stop=stop, concurrency=concurrency, health=health)
    )
    seconds = time.perf_counter() - began
    await setup.close()
    assert health.handled == n
    latencies.sort()
    return Result(
        bus=bus,
        handler=("500 ms" if delay else "instant") + (f" @{rate:.0f}/s" if rate else ""),
        n=n,
        seconds=seconds,
        p50_ms=1000 * latencies[len(latencies) // 2],
        p99_ms=1000 * latencies[int(len(latencies) * 0.99)],
        max_in_flight=health.max_in_flight,
    )


def report(results: list[Result]) -> dict[tuple[str, str], float]:
    rates: dict[tuple[str, str], float] = {}
    keys = sorted({(r.bus, r.handler) for r in results}, key=lambda k: (k[1], k[0]))
    print()
    print(
        f"{'bus':<14}{'handler':<9}{'n':>7}{'msg/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'in flight':>11}"
    )
    for key in keys:
        rs = [r for r in results if (r.bus, r.handler) == key]
        rate = statistics.median(r.rate for r in rs)
        rates[key] = rate
        print(
            f"{key[0]:<14}{key[1]:<18}{rs[0].n:>7}{rate:>9.0f}"
            f"{statistics.median(r.p50_ms for r in rs):>9.1f}"
            f"{statistics.median(r.p99_ms for r in rs):>9.1f}"
            f"{max(r.max_in_flight for r in rs):>11}"
        )
    for bus in ("postgres", "kafka", "kafka+outbox"):
        if (bus, "instant") in rates and ("memory", "instant") in rates:
            ratio = rates[(bus, "instant")] / rates[("memory", "instant")]
            print(f"{bus}: {ratio:.3f} x the in-memory bus (instant handler)")
    return rates


async def test_bus_throughput_and_latency(
    pg_pool: AsyncConnectionPool[Any], kafka_bootstrap: str
) -> None:
    setup = Setup(pg_pool, kafka_bootstrap)
    results: list[Result] = []
    cases = os.environ.get("FTE_BENCH_CASES", "fast,slow,paced").split(",")
    for _ in range(RUNS):
        for bus in BUSES:
            if "fast" in cases:
                results.append(await measure(setup, bus, FAST_N, 0.0, concurrency=64))
            if "slow" in cases:
                results.append(await measure(setup, bus, SLOW_N, 0.5, concurrency=500))
            if "paced" in cases:
                results.append(await measure(setup, bus, PACED_N, 0.0, concurrency=64, rate=PACE))
    rates = report(results)
    if ("kafka", "instant") in rates:
        assert rates[("kafka", "instant")] >= 200, "SPEC 11: >= 200 msg/s through Kafka"
