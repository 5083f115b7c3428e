"""InMemoryKnowledgeBase and PostgresKnowledgeBase: same ingest semantics, both find the
right section and say nothing for questions the base cannot answer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool

from fte_core.chunking import chunk_markdown
from fte_core.embedding import HashingEmbedder
from fte_core.errors import ValidationError
from fte_core.ports import Chunk, KnowledgeBase
from fte_core.testing.knowledge import InMemoryKnowledgeBase
from tests.integration.kb_corpus import APPS, GUIDE, IRRELEVANT, QUESTIONS


class CountingEmbedder:
    """The real HashingEmbedder, counting what it is asked to embed."""

    def __init__(self) -> None:
        self.inner = HashingEmbedder()
        self.texts: list[str] = []

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        self.texts.extend(texts)
        return await self.inner.embed(texts)


@pytest.fixture
def embedder() -> CountingEmbedder:
    return CountingEmbedder()


@pytest.fixture
async def postgres_kb(
    pg_pool: AsyncConnectionPool[Any], embedder: CountingEmbedder
) -> KnowledgeBase:
    from adapters.storage.postgres.knowledge import PostgresKnowledgeBase

    return PostgresKnowledgeBase(pg_pool, embedder)


@pytest.fixture(params=["memory", pytest.param("postgres", marks=pytest.mark.postgres)])
def kb(request: pytest.FixtureRequest) -> KnowledgeBase:
    if request.param == "memory":
        return InMemoryKnowledgeBase()
    backend: KnowledgeBase = request.getfixturevalue("postgres_kb")
    return backend


async def load(kb: KnowledgeBase) -> None:
    await kb.ingest("guide", chunk_markdown("guide", GUIDE))
    await kb.ingest("apps", chunk_markdown("apps", APPS))


@pytest.mark.parametrize(("question", "section"), QUESTIONS)
async def test_search_finds_the_right_section(
    kb: KnowledgeBase, question: str, section: str
) -> None:
    await load(kb)
    passages = await kb.search(question, limit=3)
    assert passages, question
    assert passages[0].section == section
    assert passages[0].id.startswith(("guide/", "apps/"))
    assert [p.score for p in passages] == sorted((p.score for p in passages), reverse=True)


@pytest.mark.parametrize("question", IRRELEVANT)
async def test_irrelevant_questions_return_nothing(kb: KnowledgeBase, question: str) -> None:
    await load(kb)
    assert await kb.search(question) == []


async def test_empty_base_and_empty_query(kb: KnowledgeBase) -> None:
    assert await kb.search("reset password") == []
    await load(kb)
    assert await kb.search("   ") == []
    assert await kb.search("?!") == []


async def test_reingest_replaces_only_changed_chunks(kb: KnowledgeBase) -> None:
    chunks = chunk_markdown("guide", GUIDE)
    first = await kb.ingest("guide", chunks)
    assert (first.added, first.updated, first.removed, first.unchanged) == (len(chunks), 0, 0, 0)
    assert (await kb.ingest("guide", chunks)).unchanged == len(chunks)
    edited = GUIDE.replace("valid for one hour", "valid for thirty minutes").replace(
        "## Recurring tasks", "## Repeating tasks"
    )
    report = await kb.ingest("guide", chunk_markdown("guide", edited))
    # password section changed; "Recurring tasks" removed, "Repeating tasks" added.
    assert (report.added, report.updated, report.removed, report.unchanged) == (
        1,
        1,
        1,
        len(chunks) - 2,
    )
    passages = await kb.search("how long is the password reset link valid", limit=1)
    assert "thirty minutes" in passages[0].text
    assert [p.section for p in await kb.search("make a task repeat weekly", limit=1)] == [
        "Repeating tasks"
    ]
    emptied = await kb.ingest("guide", [])
    assert emptied.removed == len(chunks)
    assert await kb.search("reset my password") == []


async def test_chunks_of_another_document_are_rejected(kb: KnowledgeBase) -> None:
    stray = Chunk(id="apps/x/0", document="apps", section="X", text="x")
    with pytest.raises(ValidationError):
        await kb.ingest("guide", [stray])


@pytest.mark.postgres
async def test_postgres_reembeds_only_changed_chunks(
    postgres_kb: KnowledgeBase, embedder: CountingEmbedder
) -> None:
    chunks = chunk_markdown("guide", GUIDE)
    await postgres_kb.ingest("guide", chunks)
    embedder.texts.clear()
    edited = GUIDE.replace("valid for one hour", "valid for thirty minutes")
    await postgres_kb.ingest("guide", chunk_markdown("guide", edited))
    # the changed chunk only: its text, its title and each of its 4 sentences (after the title)
    assert len(embedder.texts) == 6
    assert all(t.startswith("Reset your password") for t in embedder.texts)
    assert "thirty minutes" in embedder.texts[0]


@pytest.mark.postgres
async def test_a_small_base_reuses_its_plan_a_large_one_plans_each_question(
    postgres_kb: KnowledgeBase, pg_pool: AsyncConnectionPool[Any]
) -> None:
    """Planning the search cost a fifth of it on a small base; on a large one a reused
    plan cannot see how selective the question's words are (measured: 2.5x slower at
    5,000 chunks), so it is made for each question. Same answers either way."""
    from adapters.storage.postgres.knowledge import GENERIC_PLAN_CHUNKS, PostgresKnowledgeBase

    assert isinstance(postgres_kb, PostgresKnowledgeBase)
    await load(postgres_kb)

    async def mode() -> str:
        async with pg_pool.connection() as conn, conn.transaction():
            await conn.execute(postgres_kb.ef_sql)
            row = await (await conn.execute("SELECT current_setting('plan_cache_mode')")).fetchone()
            assert row is not None
            return str(row[0])

    async def candidates() -> list[list[tuple[str, int | None, int | None, float]]]:
        found = [await postgres_kb.evidence(q) for q, _ in QUESTIONS]
        return [
            [
                (r.candidate.id, r.candidate.lexical_rank, r.candidate.vector_rank, r.fused)
                for r in f
            ]
            for f in found
        ]

    small = await candidates()
    assert await candidates() == small  # by now prepared: psycopg's fifth run
    assert await mode() == "force_generic_plan"
    async with pg_pool.connection() as conn:
        await conn.execute("UPDATE knowledge_corpus SET chunks = %s", (GENERIC_PLAN_CHUNKS,))
    assert await mode() == "force_custom_plan"
    assert await candidates() == small  # every candidate, its ranks and its fused score
