"""Pipeline overhead without the LLM: the in-memory fakes (baseline) against PostgreSQL.

SPEC 11: pipeline overhead excluding the LLM call p95 <= 25 ms with PostgreSQL, with the
hashing embedder and with the default semantic one (MiniLM int8: each message's
questions embedded once, ~3.5 ms each, two at a time, while the store takes the message
in), which the rules' similarity conditions use too, as bootstrap wires them. The
responder answers instantly, so what is measured is intake, identity, threading, both
rule stages, retrieval, formatting and storage. The difference between the two runs is
the storage overhead per message. Run: `make bench` or
`.venv/bin/pytest -q -s tests/perf/test_pipeline_bench.py`.

The output rules compare the draft's own words (not the passages it quotes): the instant
responder, like the offline one, writes one introduction per article, which the rules
remember after its first use (fte_core.policy.similarity.RecentVectors). A model writes
new words every time: the row "minilm, new drafts" gives every draft words of its own,
so each is embedded (what a litellm responder's drafts cost on top).
"""

from __future__ import annotations

import functools
import itertools
import os
import statistics
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import msgspec
import pytest

from adapters.embedding.minilm import MiniLMEmbedder, runtime_available
from adapters.embedding.minilm_build import installed
from adapters.storage.postgres.embedded import EmbeddedPostgres
from adapters.storage.postgres.knowledge import PostgresKnowledgeBase
from adapters.storage.postgres.migrate import migrate
from adapters.storage.postgres.pool import open_pool
from adapters.storage.postgres.store import PostgresStore
from fte_core import Agent, InboundMessage, PolicyEngine, chunk_markdown, load_context, load_rules
from fte_core.embedding import HashingEmbedder
from fte_core.ports import Answer, AnswerRequest, CrmStore, Embedder, KnowledgeBase
from fte_core.testing import FunctionResponder, InMemoryBus, InMemoryKnowledgeBase, InMemoryStore
from service.evaluation import load_tickets

ROOT = Path(__file__).resolve().parents[2]
MODEL_DIR = ROOT / ".fte" / "models"
# fewer on a loaded machine: FTE_BENCH_MESSAGES=60 (percentiles over fewer samples)
MESSAGES = int(os.environ.get("FTE_BENCH_MESSAGES", "300"))
RUNS = 3

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def instant(request: AnswerRequest) -> Answer:
    passage = request.passages[0]
    return Answer(
        text=f'Our guide "{passage.section}" covers this step by step.',
        passage_ids=(passage.id,),
        responder="instant",
    )


def new_drafts() -> Callable[[AnswerRequest], Answer]:
    """The instant responder, with words of its own in every draft (as a model writes)."""
    drafts = itertools.count(1)

    def answer(request: AnswerRequest) -> Answer:
        plain = instant(request)
        return msgspec.structs.replace(plain, text=f"Reply {next(drafts)}: {plain.text}")

    return answer


def messages(run: int) -> list[InboundMessage]:
    tickets = [
        t
        for t in load_tickets(ROOT / "context" / "sample-tickets.json")
        if t.expected.action == "answer"
    ]
    out = []
    for i in range(MESSAGES):
        t = tickets[i % len(tickets)]
        out.append(
            InboundMessage(
                channel=t.channel,
                provider_message_id=f"bench-{run}-{i}",
                text=t.text,
                subject=t.subject,
                received_at=datetime.now(UTC),
                # a third of the senders come back: identity and threading both exercised
                sender_email=None if t.sender.phone else f"user{i % 100}-{run}@example.com",
                sender_phone=f"+1415555{i % 100:04d}" if t.sender.phone else None,
                sender_name=t.sender.name,
            )
        )
    return out


class Timed:
    """Wraps a store or knowledge base and times every awaited call, per method name."""

    def __init__(self, inner: object, calls: dict[str, list[float]]) -> None:
        self._inner = inner
        self._calls = calls

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if not callable(attr) or name.startswith("_"):
            return attr

        @functools.wraps(attr)
        async def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await cast(Callable[..., Awaitable[Any]], attr)(*args, **kwargs)
            finally:
                self._calls[name].append((time.perf_counter() - started) * 1000)

        return timed


async def measure(
    store: CrmStore,
    kb: KnowledgeBase,
    run: int,
    policy: PolicyEngine | None = None,
    respond: Callable[[AnswerRequest], Answer] = instant,
) -> list[float]:
    context = load_context(ROOT / "context")
    agent = Agent(
        policy=policy or POLICY,
        context=context,
        store=store,
        knowledge=kb,
        responder=FunctionResponder(respond),
        bus=InMemoryBus(),
    )
    timings = []
    for message in messages(run):
        started = time.perf_counter()
        outcome = await agent.handle(message)
        timings.append((time.perf_counter() - started) * 1000)
        assert outcome.record.action in ("answer", "escalate")
    return timings


POLICY = PolicyEngine(load_rules(ROOT / "rules"))


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@pytest.fixture
async def pg_pool(tmp_path: Path) -> AsyncIterator[Any]:
    server = EmbeddedPostgres(tmp_path / "pg")
    url = server.start()
    pool = await open_pool(url, min_size=2, max_size=4)
    try:
        await migrate(pool)
        yield pool
    finally:
        await pool.close()
        server.stop()


def _embedders() -> list[tuple[str, Embedder]]:
    """The hashing embedder, and the default semantic one when installed (it must be
    under CI)."""
    found: list[tuple[str, Embedder]] = [("postgres", HashingEmbedder())]
    if installed(MODEL_DIR) and runtime_available():
        found.append(("pg+minilm", MiniLMEmbedder(MODEL_DIR)))
    elif os.environ.get("CI"):
        pytest.fail("MiniLM not installed: run `make install`")
    return found


async def test_pipeline_overhead(pg_pool: Any) -> None:
    docs = (ROOT / "context" / "product-docs.md").read_text(encoding="utf-8")
    chunks = chunk_markdown("product-docs", docs)
    rows: dict[str, list[tuple[float, float, float]]] = defaultdict(list)
    calls: dict[str, list[float]] = defaultdict(list)
    for run in range(RUNS):
        mem_kb = InMemoryKnowledgeBase()
        await mem_kb.ingest("product-docs", chunks)
        t = await measure(InMemoryStore(), mem_kb, run)
        rows["memory"].append((pct(t, 0.50), pct(t, 0.95), pct(t, 0.99)))
    for name, embedder in _embedders():
        # one knowledge base at a time: an ingest by another embedder re-embeds the rows
        pg_kb = PostgresKnowledgeBase(pg_pool, embedder)
        await pg_kb.ingest("product-docs", chunks)
        # as bootstrap wires it: the rules' similarity conditions use the same embedder
        policy = PolicyEngine(load_rules(ROOT / "rules"), embedder=embedder)
        try:
            for run in range(RUNS):
                t = await measure(PostgresStore(pg_pool), pg_kb, 10 * (len(rows) + 1) + run, policy)
                rows[name].append((pct(t, 0.50), pct(t, 0.95), pct(t, 0.99)))
            if name == "pg+minilm":
                for run in range(RUNS):
                    store = PostgresStore(pg_pool)
                    t = await measure(store, pg_kb, 100 + run, policy, new_drafts())
                    rows["minilm, new drafts"].append((pct(t, 0.50), pct(t, 0.95), pct(t, 0.99)))
        finally:
            policy.close()
    # A last pass with every PostgreSQL call timed (the wrapper's own cost stays out of the
    # figures above): which store call the overhead is made of.
    timed_store = cast(CrmStore, Timed(PostgresStore(pg_pool), calls))
    traced = await measure(timed_store, cast(KnowledgeBase, Timed(pg_kb, calls)), RUNS)
    print(f"\npipeline without the LLM, {MESSAGES} messages x {RUNS} runs (median of runs), ms")
    print(f"{'backend':<20} {'p50':>8} {'p95':>8} {'p99':>8}")
    med: dict[str, list[float]] = {}
    for name, per_run in rows.items():
        med[name] = [statistics.median(r[i] for r in per_run) for i in range(3)]
        print(f"{name:<20} {med[name][0]:>8.2f} {med[name][1]:>8.2f} {med[name][2]:>8.2f}")
    for name in (n for n in med if n != "memory"):
        overhead = [p - m for p, m in zip(med[name], med["memory"], strict=True)]
        print(
            f"{name + ' - mem':<20} {overhead[0]:>8.2f} {overhead[1]:>8.2f} {overhead[2]:>8.2f}"
            f"   ({name} / memory p50 = {med[name][0] / med['memory'][0]:.1f}x)"
        )
    print(f"\nPostgreSQL per call, ms (that pass: p50 {pct(traced, 0.5):.2f})")
    print(f"{'call':<30} {'calls':>6} {'p50':>8} {'p95':>8}")
    for method, values in sorted(calls.items(), key=lambda kv: -sum(kv[1])):
        line = f"{method:<30} {len(values):>6} {pct(values, 0.5):>8.2f} {pct(values, 0.95):>8.2f}"
        print(line)
    assert med["postgres"][1] > 0
