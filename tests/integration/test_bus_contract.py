"""One contract over the three buses: in-memory, the PostgreSQL queue, Kafka (Tansu)."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from fte_core import events
from fte_core.models import Channel
from fte_core.ports import Delivery, EventConsumer
from service.worker import WorkerHealth, run_worker
from tests.integration.bus_harness import (
    RETRY,
    Harness,
    KafkaHarness,
    MemoryHarness,
    PostgresHarness,
)


@pytest.fixture(
    params=[
        "memory",
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("kafka", marks=pytest.mark.kafka),
    ]
)
def backend(request: pytest.FixtureRequest) -> Harness:
    """Sync on purpose: it picks the async fixtures by name outside the event loop."""
    if request.param == "postgres":
        return PostgresHarness(request.getfixturevalue("pg_pool"))
    if request.param == "kafka":
        return KafkaHarness(request.getfixturevalue("kafka_bootstrap"))
    return MemoryHarness()


@pytest.fixture
async def harness(backend: Harness) -> AsyncIterator[Harness]:
    await backend.start()
    try:
        yield backend
    finally:
        await backend.aclose()


def inbound(n: int) -> events.InboundEvent:
    return events.InboundEvent(
        message_id=f"m{n}", channel=Channel.EMAIL, provider_message_id=f"p{n}"
    )


def number(delivery: Delivery) -> int:
    event = events.decode(delivery.payload)
    assert isinstance(event, events.InboundEvent)
    return int(event.message_id[1:])


async def drain(
    consumer: EventConsumer, expected: int, *, deadline: float = 20.0
) -> list[Delivery]:
    """Receive and ack until `expected` deliveries arrived (or the deadline passes)."""
    got: list[Delivery] = []
    end = time.monotonic() + deadline
    while len(got) < expected and time.monotonic() < end:
        for d in await consumer.receive(50, 0.5):
            got.append(d)
            await consumer.ack(d)
    return got


async def test_published_events_are_consumed_once_with_their_payload(harness: Harness) -> None:
    for n in range(20):
        await harness.bus.publish(events.INBOUND, f"cust-{n % 3}", inbound(n))
    consumer = await harness.consumer()
    got = await drain(consumer, 20)
    assert sorted(number(d) for d in got) == list(range(20))
    assert all(d.topic == events.INBOUND and d.attempts == 1 for d in got)
    assert {d.key for d in got} == {"cust-0", "cust-1", "cust-2"}
    assert len({d.id for d in got}) == 20
    assert await consumer.receive(50, 0.5) == []  # acked: never again
    await consumer.close()


async def test_one_key_at_a_time_in_order_while_other_keys_proceed(harness: Harness) -> None:
    keys = [f"cust-{k}" for k in range(4)]
    for n in range(40):
        await harness.bus.publish(events.INBOUND, keys[n % 4], inbound(n))
    consumer = await harness.consumer()
    seen: dict[str, list[int]] = {k: [] for k in keys}
    rng = random.Random(7)
    end = time.monotonic() + 30
    while sum(map(len, seen.values())) < 40 and time.monotonic() < end:
        batch = await consumer.receive(100, 0.5)
        assert len({d.key for d in batch}) == len(batch), "two deliveries of one key out at once"
        rng.shuffle(batch)  # finish keys in any order: each key's own order must still hold
        for d in batch:
            seen[d.key].append(number(d))
            await consumer.ack(d)
    assert seen == {k: list(range(i, 40, 4)) for i, k in enumerate(keys)}
    await consumer.close()


async def test_a_consumer_that_dies_before_committing_has_its_events_redelivered(
    harness: Harness,
) -> None:
    for n in range(6):
        await harness.bus.publish(events.INBOUND, f"cust-{n}", inbound(n))
    first = await harness.consumer()
    taken: list[Delivery] = []
    end = time.monotonic() + 20
    while len(taken) < 6 and time.monotonic() < end:
        taken += await first.receive(10, 0.5)
    await first.ack(taken[0])
    await first.close()  # the other five were never acked: as if it died
    second = await harness.consumer()
    again = await drain(second, 5, deadline=30)
    assert sorted(d.id for d in again) == sorted(d.id for d in taken[1:])
    expected_attempts = 2 if harness.attempts_survive_crash else 1
    assert {d.attempts for d in again} == {expected_attempts}
    await second.close()


async def test_a_poison_event_is_dead_lettered_with_its_error_and_blocks_only_its_key(
    harness: Harness,
) -> None:
    await harness.bus.publish(events.INBOUND, "poison-key", inbound(0))
    await harness.bus.publish(events.INBOUND, "poison-key", inbound(1))
    await harness.bus.publish(events.INBOUND, "other-key", inbound(2))
    consumer = await harness.consumer()
    handled: list[int] = []
    poison_attempts: list[int] = []
    dead = False
    end = time.monotonic() + 30
    while len(handled) < 2 and time.monotonic() < end:
        for d in await consumer.receive(10, 0.5):
            if number(d) == 0:
                poison_attempts.append(d.attempts)
                dead = await consumer.retry(d, f"ValueError: cannot parse attempt {d.attempts}")
            else:
                handled.append(number(d))
                await consumer.ack(d)
                if number(d) == 1:
                    assert dead, "the poison event's successor overtook it"
    assert handled[-1] == 1
    assert sorted(handled) == [1, 2]
    assert handled.index(2) == 0, "another key waited for the poison event"
    assert poison_attempts == [1, 2, 3]
    assert dead
    (letter,) = await harness.dead_letters()
    assert letter.key == "poison-key"
    assert letter.topic == events.INBOUND
    assert letter.attempts == RETRY.max_attempts
    assert letter.error == "ValueError: cannot parse attempt 3"
    assert events.decode(letter.payload) == inbound(0)
    await consumer.close()


async def test_nothing_is_lost_or_repeated_across_a_consumer_restart(harness: Harness) -> None:
    for n in range(100):
        await harness.bus.publish(events.INBOUND, f"cust-{n % 7}", inbound(n))
    first = await harness.consumer()
    part = await drain(first, 40)
    await first.close()
    second = await harness.consumer()
    rest = await drain(second, 100 - len(part))
    await second.close()
    numbers = [number(d) for d in part + rest]
    assert sorted(numbers) == list(range(100))


async def test_the_worker_runs_keys_concurrently_and_drains_on_stop(harness: Harness) -> None:
    for n in range(60):
        await harness.bus.publish(events.INBOUND, f"cust-{n % 12}", inbound(n))
    handled: list[int] = []
    stop, stop2 = asyncio.Event(), asyncio.Event()
    active: dict[str, int] = {}

    async def handle(delivery: Delivery) -> None:
        active[delivery.key] = active.get(delivery.key, 0) + 1
        assert active[delivery.key] == 1, "one key handled twice at once"
        await asyncio.sleep(0.02)
        handled.append(number(delivery))
        active[delivery.key] -= 1
        if len(handled) == 30:
            stop.set()
        if len(handled) == 60:
            stop2.set()

    health = WorkerHealth()
    await run_worker(await harness.consumer(), handle, stop=stop, concurrency=8, health=health)
    first_run = list(handled)
    assert len(first_run) >= 30  # the ones in flight at stop were finished, not dropped
    assert health.max_in_flight > 1
    assert health.handled == len(first_run)
    assert health.stopping
    assert not health.ready()
    await run_worker(await harness.consumer(), handle, stop=stop2, concurrency=8)
    assert sorted(handled) == list(range(60))  # a clean stop repeats nothing


async def test_a_handler_failure_is_retried_by_the_worker(harness: Harness) -> None:
    await harness.bus.publish(events.INBOUND, "k", inbound(1))
    calls: list[int] = []
    stop = asyncio.Event()

    async def flaky(delivery: Delivery) -> None:
        calls.append(delivery.attempts)
        if delivery.attempts < 2:
            raise RuntimeError(f"transient at {datetime.now(UTC):%H:%M:%S}")
        stop.set()

    health = await run_worker(await harness.consumer(), flaky, stop=stop, concurrency=2)
    assert calls == [1, 2]
    assert health.retried == 1
    assert health.handled == 1
    assert health.dead_lettered == 0
