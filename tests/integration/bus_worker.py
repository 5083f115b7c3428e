"""A worker process for the crash, shutdown and memory tests (run with `python -m`).

Its handler does what a real one must: the effect and the claim of the event id in
`processed_messages` commit in one PostgreSQL transaction (here one statement), so a
redelivered event has no second effect. Each call is also logged in `bus_calls`
(committed first), so tests can see that redeliveries really happened. Exits 0 after
SIGTERM once its work is drained.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from contextlib import AsyncExitStack
from typing import Any

from psycopg_pool import AsyncConnectionPool

from adapters.bus.retry import RetryPolicy
from adapters.storage.postgres.pool import open_pool
from fte_core import events
from fte_core.ports import Delivery, EventConsumer
from service.worker import WorkerHealth, serve_worker

CONSUMER = "bus-test-worker"

SCHEMA = """
CREATE TABLE IF NOT EXISTS bus_effects (
    n            integer NOT NULL,
    delivery_id  text NOT NULL,
    pid          integer NOT NULL
);
CREATE TABLE IF NOT EXISTS bus_calls (n integer NOT NULL, pid integer NOT NULL);
"""


def number(delivery: Delivery) -> int:
    event = events.decode(delivery.payload)
    assert isinstance(event, events.InboundEvent)
    return int(event.message_id[1:])


def make_handler(pool: AsyncConnectionPool[Any], delay: float, log_calls: bool) -> Any:
    pid = os.getpid()

    async def handle(delivery: Delivery) -> None:
        n = number(delivery)
        if log_calls:
            async with pool.connection() as conn:
                await conn.execute("INSERT INTO bus_calls (n, pid) VALUES (%s, %s)", (n, pid))
        if delay:
            await asyncio.sleep(delay)  # the model call
        async with pool.connection() as conn:
            # One statement, so one transaction: the claim and the effect commit together.
            await conn.execute(
                "WITH claim AS (INSERT INTO processed_messages (consumer, message_id)"
                " VALUES (%s, %s) ON CONFLICT DO NOTHING RETURNING message_id)"
                " INSERT INTO bus_effects (n, delivery_id, pid) SELECT %s, message_id, %s"
                " FROM claim",
                (CONSUMER, delivery.id, n, pid),
            )

    return handle


async def make_consumer(args: argparse.Namespace, pool: Any, stack: AsyncExitStack) -> Any:
    retry = RetryPolicy(max_attempts=5, backoff=0.1, max_backoff=1.0)
    if args.bus == "postgres":
        from adapters.bus.postgres import PostgresBus

        return PostgresBus(pool).consumer(
            (events.INBOUND,), retry=retry, visibility_timeout=args.visibility
        )
    from adapters.bus.kafka import KafkaBus, KafkaConfig
    from adapters.bus.kafka_consumer import KafkaConsumer

    config = KafkaConfig(
        bootstrap=args.kafka,
        topic_prefix=args.prefix,
        group=args.group,
        idempotent=False,
        session_timeout_ms=1500,
    )
    producer = KafkaBus(config)
    await producer.start()
    stack.push_async_callback(producer.stop)
    consumer = KafkaConsumer(config, (events.INBOUND,), producer, retry=retry)
    await consumer.start()
    return consumer


async def main(args: argparse.Namespace) -> int:
    async with AsyncExitStack() as stack:
        pool = await open_pool(args.db, min_size=2, max_size=args.concurrency + 4)
        stack.push_async_callback(pool.close)
        consumer: EventConsumer = await make_consumer(args, pool, stack)
        health = WorkerHealth()
        await serve_worker(
            consumer,
            make_handler(pool, args.delay, not args.no_calls),
            concurrency=args.concurrency,
            health=health,
        )
        print(f"drained: handled={health.handled}", flush=True)
    return 0


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bus", choices=["postgres", "kafka"], required=True)
    parser.add_argument("--db", required=True)
    parser.add_argument("--kafka", default="")
    parser.add_argument("--prefix", default="")
    parser.add_argument("--group", default="fte-test")
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--visibility", type=float, default=2.0)
    parser.add_argument("--no-calls", action="store_true", help="do not log calls")
    return parser.parse_args(argv)


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    sys.exit(asyncio.run(main(parse(sys.argv[1:]))))
