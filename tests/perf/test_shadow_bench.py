"""Shadow evaluation cost (`fte rules shadow`), not part of `make test`.

Run: .venv/bin/pytest -q -s -p no:cacheprovider tests/perf/test_shadow_bench.py

1. compare(): 4,000 customer messages and 1,000 drafts (the rules benchmark's generators)
   through the shipped rules twice (active and an identical proposed set), beside the
   baseline of one rule set deciding the same texts as the pipeline does (features and
   one evaluation per message). Median over RUNS of messages per second, and the ratio.
2. collect() over PostgreSQL: reading N stored customer messages back (one query for the
   period, one per message for its subject), median over RUNS of messages per second.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool

from adapters.storage.postgres.store import PostgresStore
from fte_core.identity import identifiers_for
from fte_core.models import Channel, InboundMessage
from fte_core.policy.engine import PolicyEngine, features
from fte_core.policy.loader import load_rules
from fte_core.shadow import Sample, Stage, collect, compare
from tests.perf.test_rules_bench import _draft, _message

RULES = Path(__file__).resolve().parents[2] / "rules"
RUNS = 5
MESSAGES, DRAFTS, STORED = 4_000, 1_000, 2_000
NOW = datetime(2026, 11, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def engines() -> Iterator[tuple[PolicyEngine, PolicyEngine]]:
    active, proposed = PolicyEngine(load_rules(RULES)), PolicyEngine(load_rules(RULES))
    yield active, proposed
    active.close()
    proposed.close()


def _samples() -> list[Sample]:
    rng = random.Random(7)
    out = []
    for i in range(MESSAGES + DRAFTS):
        if i < MESSAGES:
            channel, text = _message(rng)
        else:
            channel, text = rng.choice(list(Channel)), _draft(rng)
        stage: Stage = "input" if i < MESSAGES else "output"
        out.append(Sample(stage, f"m{i}", "TKT-000001", channel, NOW, text, None))
    return out


def _baseline(engine: PolicyEngine, samples: list[Sample]) -> None:
    for s in samples:
        if s.stage == "input":
            engine.evaluate_features("input", features(s.text, s.channel))
        else:
            engine.evaluate("output", s.text, s.channel)


def test_compare_throughput(engines: tuple[PolicyEngine, PolicyEngine]) -> None:
    active, proposed = engines
    samples = _samples()
    shadow_rates, base_rates = [], []
    for _ in range(RUNS):
        started = time.perf_counter()
        _baseline(active, samples)
        base_rates.append(len(samples) / (time.perf_counter() - started))
        started = time.perf_counter()
        report = compare(
            active,
            proposed,
            samples,
            since=NOW - timedelta(days=7),
            until=NOW,
            directories=("rules", "rules"),
            team_of=lambda reason: reason or "none",
        )
        shadow_rates.append(len(samples) / (time.perf_counter() - started))
        assert report.zero_changes
    shadow, base = statistics.median(shadow_rates), statistics.median(base_rates)
    print(
        f"\nshadow compare: {shadow:,.0f} texts/s (median of {RUNS}); baseline one rule set "
        f"{base:,.0f} texts/s; shadow costs {base / shadow:.2f}x the baseline per text"
    )


async def test_collect_throughput(pg_pool: AsyncConnectionPool[Any]) -> None:
    store = PostgresStore(pg_pool)
    now = datetime.now(UTC)
    rng = random.Random(3)
    for i in range(STORED):
        _, text = _message(rng)
        message = InboundMessage(
            channel=Channel.EMAIL,
            provider_message_id=f"bench-{i}",
            text=text,
            subject="Help",
            received_at=now,
            sender_email=f"c{i % 300}@example.com",
        )
        await store.open_turn(message, identifiers_for(message), None, now, timedelta(hours=24))
    rates = []
    for _ in range(RUNS):
        started = time.perf_counter()
        samples = await collect(store, now - timedelta(days=1))
        rates.append(len(samples) / (time.perf_counter() - started))
        assert len(samples) == STORED
    print(f"\nshadow collect over PostgreSQL: {statistics.median(rates):,.0f} messages/s")
