"""Knowledge-base hybrid search at 10k and 100k chunks (SPEC 11: p99 <= 25 ms, HNSW
recall@10 >= 0.95 vs exact scan).

Run: .venv/bin/pytest -q -s tests/perf/test_kb_search_bench.py  (not part of `make test`)

The corpus is synthetic: topical chunks of 60 words (see _corpus) over a 30k-word
vocabulary (product words plus generated terms), embedded with the offline HashingEmbedder (pure
Python, ~0.6 ms per chunk) and bulk-loaded with COPY; the HNSW index is built after the
load. Queries are 3-6 words sampled from random chunks, so each has a true answer.
Latency is the full PostgresKnowledgeBase.search() call (query embedding, full-text and
HNSW candidates, fusion) over a pool on the Unix socket.
"""

from __future__ import annotations

import itertools
import os
import random
import statistics
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import msgspec
import psycopg
import pytest
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from adapters.storage.postgres.embedded import EmbeddedPostgres
from adapters.storage.postgres.knowledge import PostgresKnowledgeBase, vector_literal
from adapters.storage.postgres.migrate import migrate
from adapters.storage.postgres.pool import open_pool
from fte_core.chunking import chunk_markdown
from fte_core.embedding import HashingEmbedder, hashing_vector
from fte_core.errors import StorageError
from fte_core.ports import KnowledgeBase
from fte_core.testing.knowledge import InMemoryKnowledgeBase

pytestmark = pytest.mark.postgres

DIM = 384
QUERIES = 300
RECALL_QUERIES = 100
CHUNK_WORDS = 60

_PRODUCT_TEXT = """
task project board timeline workspace member guest admin owner role permission invite
slack drive github jira zapier import export csv json webhook api token sso saml okta
azure login password reset email notification push mobile ios android offline sync
recurring subtask automation template label priority due date calendar comment mention
attachment file upload search filter report dashboard archive delete restore billing
plan seat integration settings profile security audit log team portfolio milestone
"""
_PRODUCT_WORDS = _PRODUCT_TEXT.split()


def _vocabulary(rng: random.Random, size: int) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    generated = {
        "".join(rng.choice(letters) for _ in range(rng.randint(4, 10))) for _ in range(size)
    }
    return _PRODUCT_WORDS + sorted(generated)


def _corpus(count: int, seed: int = 7) -> Iterator[tuple[str, str, str]]:
    """Topical text, as real documentation is: each document (50 chunks) is about two of
    500 topics (80 words each); a chunk draws ~2/3 of its words from its document's topics
    and the rest from a Zipf background over the whole vocabulary."""
    rng = random.Random(seed)
    vocab = _vocabulary(rng, 30_000)
    background = list(itertools.accumulate(1.0 / (r + 1) ** 0.9 for r in range(len(vocab))))
    topic_cum = list(itertools.accumulate(1.0 / (r + 1) for r in range(80)))
    topics = [rng.sample(vocab[len(_PRODUCT_WORDS) :], 80) for _ in range(500)]
    doc_topics: list[list[str]] = []
    for i in range(count):
        if i % 50 == 0:
            doc_topics = rng.sample(topics, 2)
        words = [
            rng.choices(rng.choice(doc_topics), cum_weights=topic_cum)[0]
            if rng.random() < 0.65
            else rng.choices(vocab, cum_weights=background)[0]
            for _ in range(CHUNK_WORDS)
        ]
        section = " ".join(rng.choices(doc_topics[0], cum_weights=topic_cum, k=4)).capitalize()
        yield f"bench/doc-{i // 50}/{i}", section, " ".join(words) + "."


async def _load(pool: AsyncConnectionPool[Any], count: int) -> tuple[float, float]:
    """COPY the corpus in, then build the HNSW index; returns (load s, index s)."""
    started = time.perf_counter()
    async with pool.connection() as conn:
        await conn.execute("TRUNCATE knowledge_base CASCADE")
        await conn.execute("DROP INDEX IF EXISTS knowledge_base_embedding_384_idx")
        async with conn.cursor() as cursor:
            copy_sql = (
                "COPY knowledge_base (id, document, section, chunk_text, content_hash, embedder,"
                " dim, embedding) FROM STDIN"
            )
            async with cursor.copy(copy_sql) as copy:
                for chunk_id, section, text in _corpus(count):
                    vector = vector_literal(hashing_vector(f"{section}\n{text}", DIM))
                    row = (
                        chunk_id,
                        chunk_id.rsplit("/", 1)[0],
                        section,
                        text,
                        "h",
                        HashingEmbedder(DIM).name,
                    )
                    await copy.write_row((*row, DIM, vector))
        loaded = time.perf_counter()
        kb = PostgresKnowledgeBase(pool, HashingEmbedder(DIM))
        await kb.prepare()
        await kb.refresh_terms()
        await conn.execute("ANALYZE knowledge_base, knowledge_lexemes")
    return loaded - started, time.perf_counter() - loaded


def _queries(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    corpus = list(_corpus(2_000))
    queries = []
    for _ in range(count):
        _, section, text = rng.choice(corpus)
        words = (section + " " + text).lower().rstrip(".").split()
        queries.append("how do I " + " ".join(rng.sample(words, rng.randint(3, 6))))
    return queries


async def _latencies(kb: PostgresKnowledgeBase, queries: list[str]) -> tuple[list[float], int]:
    for query in queries[:20]:
        await kb.search(query)
    timings = []
    hits = 0
    for query in queries:
        started = time.perf_counter()
        passages = await kb.search(query)
        timings.append((time.perf_counter() - started) * 1000)
        hits += bool(passages)
    return timings, hits


async def _recall(pool: AsyncConnectionPool[Any], queries: list[str], ef_search: int) -> float:
    """HNSW top 10 vs exact top 10. The exact query orders by `distance + 0`, which no
    index can serve, and neither statement is prepared: a cached plan would otherwise
    survive the settings changes and silently compare the index with itself."""
    vtype = sql.SQL("vector({})").format(sql.Literal(DIM))
    distance = sql.SQL("embedding::{vtype} <=> %s::{vtype}").format(vtype=vtype)
    knn = sql.SQL("SELECT id FROM knowledge_base WHERE dim = {dim} ORDER BY {d} LIMIT 10").format(
        dim=sql.Literal(DIM), d=distance
    )
    exact_knn = sql.SQL(
        "SELECT id FROM knowledge_base WHERE dim = {dim} ORDER BY ({d}) + 0 LIMIT 10"
    ).format(dim=sql.Literal(DIM), d=distance)
    total = 0.0
    async with pool.connection() as conn:
        for query in queries:
            vector = vector_literal(hashing_vector(query, DIM))
            async with conn.transaction():
                await conn.execute(
                    sql.SQL("SET LOCAL hnsw.ef_search = {}").format(sql.Literal(ef_search))
                )
                cursor = await conn.execute(knn, (vector,), prepare=False)
                approx = {r[0] for r in await cursor.fetchall()}
            cursor = await conn.execute(exact_knn, (vector,), prepare=False)
            exact = {r[0] for r in await cursor.fetchall()}
            total += len(approx & exact) / max(1, len(exact))
    return total / len(queries)


def _pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


@pytest.fixture(scope="module")
def bench_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    external = os.environ.get("FTE_TEST_DATABASE_URL")
    if external:
        yield external
        return
    server = EmbeddedPostgres(Path(tmp_path_factory.mktemp("pgbench")) / "data")
    try:
        url = server.start()
    except StorageError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL unavailable: {exc}")
        pytest.skip(f"PostgreSQL unavailable: {exc}")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ALTER SYSTEM SET fsync = off")
        conn.execute("ALTER SYSTEM SET shared_buffers = '512MB'")
        conn.execute("ALTER SYSTEM SET maintenance_work_mem = '1GB'")
        conn.execute("ALTER SYSTEM SET max_parallel_maintenance_workers = 1")
        # A parallel HNSW build puts its graph in dynamic shared memory; container
        # /dev/shm is often tiny (SIGBUS kills the server), so use files instead.
        conn.execute("ALTER SYSTEM SET dynamic_shared_memory_type = 'mmap'")
    server.stop()
    url = server.start()  # shared_buffers and dynamic_shared_memory_type need a restart
    try:
        yield url
    finally:
        server.stop()


@pytest.fixture
async def bench_pool(bench_url: str) -> AsyncIterator[AsyncConnectionPool[Any]]:
    pool = await open_pool(bench_url, min_size=1, max_size=2)
    await migrate(pool)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.mark.parametrize(
    "chunks", [10_000, pytest.param(100_000, marks=pytest.mark.slow)], ids=["10k", "100k"]
)
async def test_kb_hybrid_search(bench_pool: AsyncConnectionPool[Any], chunks: int) -> None:
    load_s, index_s = await _load(bench_pool, chunks)
    kb = PostgresKnowledgeBase(bench_pool, HashingEmbedder(DIM))
    timings, hits = await _latencies(kb, _queries(QUERIES, seed=1))
    recall_queries = _queries(RECALL_QUERIES, seed=2)
    recalls = {ef: await _recall(bench_pool, recall_queries, ef) for ef in (40, 100, 200)}
    print(
        f"\nKB hybrid search, {chunks:,} chunks (HashingEmbedder {DIM}-d)\n"
        f"  load (embed + COPY) {load_s:7.1f} s   HNSW build {index_s:7.1f} s\n"
        f"  search over {len(timings)} queries: p50 {_pct(timings, 50):6.2f} ms   "
        f"p95 {_pct(timings, 95):6.2f} ms   p99 {_pct(timings, 99):6.2f} ms   "
        f"answered {hits}/{len(timings)}\n"
        + "".join(
            f"  HNSW recall@10 vs exact scan, ef_search={ef:<3}: {r:.3f}\n"
            for ef, r in recalls.items()
        )
    )
    assert len(timings) == QUERIES
    assert all(0.0 <= r <= 1.0 for r in recalls.values())


class _Expected(msgspec.Struct, frozen=True):
    action: str
    section: str | None = None
    reason: str | None = None


class _Ticket(msgspec.Struct, frozen=True):
    id: str
    text: str
    expected: _Expected
    subject: str | None = None


_CONTEXT = Path(__file__).resolve().parents[2] / "context"


async def _quality(kb: KnowledgeBase, tickets: list[_Ticket]) -> str:
    top1 = top3 = answered = no_match_ok = 0
    answerable = [t for t in tickets if t.expected.action == "answer" and t.expected.section]
    no_match = [t for t in tickets if t.expected.reason == "no_kb_match"]
    for ticket in answerable:
        sections = [p.section for p in await kb.search(f"{ticket.subject or ''}\n{ticket.text}", 3)]
        answered += bool(sections)
        top1 += sections[:1] == [ticket.expected.section]
        top3 += ticket.expected.section in sections
    for ticket in no_match:
        no_match_ok += not await kb.search(f"{ticket.subject or ''}\n{ticket.text}", 3)
    n = len(answerable)
    return (
        f"top-1 {top1}/{n} ({top1 / n:.0%})  top-3 {top3}/{n} ({top3 / n:.0%})  "
        f"answered {answered}/{n}  no_kb_match tickets returning [] {no_match_ok}/{len(no_match)}"
    )


async def test_retrieval_quality_on_sample_tickets(bench_pool: AsyncConnectionPool[Any]) -> None:
    """Which section each sample ticket (context/sample-tickets.json) retrieves from
    context/product-docs.md, for the offline defaults."""
    docs = _CONTEXT / "product-docs.md"
    if not docs.exists():
        pytest.skip("context/product-docs.md not written yet")
    tickets = msgspec.json.decode(
        (_CONTEXT / "sample-tickets.json").read_bytes(), type=list[_Ticket]
    )
    chunks = chunk_markdown("product-docs", docs.read_text())
    async with bench_pool.connection() as conn:
        await conn.execute("TRUNCATE knowledge_base CASCADE")
    hybrid = PostgresKnowledgeBase(bench_pool, HashingEmbedder(DIM))
    lexical = InMemoryKnowledgeBase()
    for kb in (hybrid, lexical):
        await kb.ingest("product-docs", chunks)
    print(
        f"\nRetrieval quality, {len(chunks)} chunks of product-docs.md, {len(tickets)} tickets\n"
        f"  PostgreSQL hybrid (HashingEmbedder): {await _quality(hybrid, tickets)}\n"
        f"  in-memory BM25 fake:                 {await _quality(lexical, tickets)}\n"
    )
    assert tickets
