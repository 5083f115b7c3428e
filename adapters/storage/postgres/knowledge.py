"""PostgresKnowledgeBase: hybrid search (full text + pgvector HNSW) fused by reciprocal rank.

Search takes the `candidates` best chunks by full-text score (any query word may match: OR
semantics; score = sum of the idf of the query words the chunk contains, a word in the
section title counting 1 + `title_weight` times: migration 0005 labels titles weight A)
and the `candidates` nearest by cosine distance through the HNSW index (hnsw.ef_search =
`ef_search`), and fuses the two rankings with reciprocal rank fusion (k = 60): score =
sum over lists of 1 / (60 + rank). Passage.score is that fused score.

No-match threshold: a fused candidate is returned only if its evidence, coverage + cosine,
is at least `threshold`. Coverage is the share of the question's idf mass found in the
chunk (a question word absent from the base counts with the highest idf), cosine the
embedding similarity. Off-topic questions share a few generic words ("tasks", "team")
with many chunks but little of their distinctive vocabulary, so both terms stay low and
the pipeline escalates `no_kb_match`. The default (0.3) was calibrated for the offline
HashingEmbedder on context/sample-tickets.json; a semantic model needs its own value.

Common words: query words found in more than `common_fraction` of the chunks (and in more
than COMMON_FLOOR chunks, so small bases are never pruned) are left out of the OR query;
they carry no relevance signal and would make ts_rank score most of the table. When every
word is common, the query falls back to AND semantics (plainto_tsquery). Frequencies come
from ts_stat, refreshed by ingest (table knowledge_terms, migration 0004).

Dimensions: the embedding column is untyped; one partial HNSW expression index per
dimension is created when the base is first used (see migration 0002).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

import msgspec
import psycopg
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from adapters.storage.postgres.pool import connection
from fte_core.chunking import check_chunks, chunk_hash
from fte_core.errors import StorageError
from fte_core.models import Passage
from fte_core.ports import Chunk, Embedder, IngestReport

log = logging.getLogger(__name__)

Conn = psycopg.AsyncConnection[Any]

RRF_K = 60
DEFAULT_THRESHOLD = 0.3
COMMON_FLOOR = 500
_QUERY_WORD = re.compile(r"\w+")
_MAX_QUERY_CHARS = 2000
_EMBED_BATCH = 256


class _Candidate(msgspec.Struct, kw_only=True):
    id: str
    document: str
    section: str
    text: str
    similarity: float
    lexical: float
    coverage: float
    lexical_rank: int | None = None
    vector_rank: int | None = None

    @property
    def fused(self) -> float:
        return sum(1.0 / (RRF_K + r) for r in (self.lexical_rank, self.vector_rank) if r)


def vector_literal(vector: Sequence[float]) -> str:
    """pgvector's text form; works whether or not the connection registered its types."""
    return "[" + ",".join(f"{v:.7g}" for v in vector) + "]"


class PostgresKnowledgeBase:
    def __init__(
        self,
        pool: AsyncConnectionPool[Any],
        embedder: Embedder,
        *,
        threshold: float = DEFAULT_THRESHOLD,
        candidates: int = 50,
        common_fraction: float = 0.05,
        ef_search: int | None = None,
        title_weight: float = 1.0,
    ) -> None:
        self._pool = pool
        self._embedder = embedder
        self.threshold = threshold
        self.candidates = candidates
        self.common_fraction = common_fraction
        self.title_weight = title_weight
        # Recall vs latency: see tests/perf/test_kb_search_bench.py for measured figures.
        self.ef_search = int(ef_search) if ef_search else max(40, 2 * candidates)
        self._dim = int(embedder.dimension)
        self._index_ready = False
        self._vector_type = sql.SQL("vector({})").format(sql.Literal(self._dim))

    def _conn(self) -> AbstractAsyncContextManager[Conn]:
        return connection(self._pool, "PostgreSQL knowledge base")

    async def prepare(self) -> None:
        """Create the HNSW index for this embedder's dimension (idempotent)."""
        if self._index_ready:
            return
        name = sql.Identifier(f"knowledge_base_embedding_{self._dim}_idx")
        statement = sql.SQL(
            "CREATE INDEX IF NOT EXISTS {} ON knowledge_base USING hnsw "
            "((embedding::{}) vector_cosine_ops) WITH (m = 16, ef_construction = 64) "
            "WHERE dim = {}"
        ).format(name, self._vector_type, sql.Literal(self._dim))
        async with self._conn() as conn, conn.transaction():
            # Concurrent CREATE INDEX IF NOT EXISTS can still collide on the catalog.
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (0x66746B62,))
            await conn.execute(statement)
        self._index_ready = True

    async def ingest(self, document: str, chunks: Sequence[Chunk]) -> IngestReport:
        wanted = check_chunks(document, chunks)
        await self.prepare()
        async with self._conn() as conn:
            cursor = await conn.execute(
                "SELECT id, content_hash, embedder FROM knowledge_base WHERE document = %s",
                (document,),
            )
            stored = {row[0]: (row[1], row[2]) for row in await cursor.fetchall()}
        name = self._embedder.name
        hashes = {chunk_id: chunk_hash(chunk) for chunk_id, chunk in wanted.items()}
        changed = [c for i, c in wanted.items() if stored.get(i) != (hashes[i], name)]
        removed = [i for i in stored if i not in wanted]
        vectors = await self._embed([f"{c.section}\n{c.text}" for c in changed])
        async with self._conn() as conn, conn.transaction():
            if removed:
                await conn.execute("DELETE FROM knowledge_base WHERE id = ANY(%s)", (removed,))
            for chunk, vector in zip(changed, vectors, strict=True):
                await conn.execute(
                    """INSERT INTO knowledge_base (id, document, section, chunk_text,
                           content_hash, embedder, dim, embedding)
                       VALUES (%s, %s, %s, %s, %s, %s, %s, %s::vector)
                       ON CONFLICT (id) DO UPDATE SET document = excluded.document,
                           section = excluded.section, chunk_text = excluded.chunk_text,
                           content_hash = excluded.content_hash, embedder = excluded.embedder,
                           dim = excluded.dim, embedding = excluded.embedding,
                           updated_at = now()""",
                    (
                        chunk.id,
                        document,
                        chunk.section,
                        chunk.text,
                        hashes[chunk.id],
                        name,
                        self._dim,
                        vector_literal(vector),
                    ),
                )
            if changed or removed:
                await self._refresh_terms(conn)
        updated = sum(1 for c in changed if c.id in stored)
        report = IngestReport(
            added=len(changed) - updated,
            updated=updated,
            removed=len(removed),
            unchanged=len(wanted) - len(changed),
        )
        log.info("ingested %s: %s", document, report)
        return report

    async def refresh_terms(self) -> None:
        """Recompute lexeme frequencies (ingest does it; bulk loaders call this)."""
        async with self._conn() as conn, conn.transaction():
            await self._refresh_terms(conn)

    @staticmethod
    async def _refresh_terms(conn: Conn) -> None:
        await conn.execute("DELETE FROM knowledge_terms")
        await conn.execute(
            "INSERT INTO knowledge_terms (lexeme, ndoc)"
            " SELECT word, ndoc FROM ts_stat('SELECT tsv FROM knowledge_base')"
        )
        await conn.execute(
            """INSERT INTO knowledge_corpus (chunks) SELECT count(*) FROM knowledge_base
               ON CONFLICT (singleton) DO UPDATE SET chunks = excluded.chunks"""
        )

    async def _embed(self, texts: list[str]) -> list[list[float]]:
        vectors: list[list[float]] = []
        for start in range(0, len(texts), _EMBED_BATCH):
            vectors.extend(await self._embedder.embed(texts[start : start + _EMBED_BATCH]))
        if len(vectors) != len(texts) or any(len(v) != self._dim for v in vectors):
            raise StorageError(f"embedder {self._embedder.name} returned malformed vectors")
        return vectors

    async def search(self, query: str, limit: int = 5) -> list[Passage]:
        query = query[:_MAX_QUERY_CHARS]
        if not _QUERY_WORD.search(query) or limit <= 0:
            return []
        await self.prepare()
        (vector,) = await self._embed([query])
        found = await self._candidates(query, vector_literal(vector))
        accepted = [c for c in found.values() if self._relevant(c)]
        accepted.sort(key=lambda c: (-c.fused, -c.similarity, c.id))
        return [
            Passage(id=c.id, document=c.document, section=c.section, text=c.text, score=c.fused)
            for c in accepted[:limit]
        ]

    def _relevant(self, c: _Candidate) -> bool:
        return c.coverage + c.similarity >= self.threshold

    async def _candidates(self, query: str, vector: str) -> dict[str, _Candidate]:
        params: dict[str, Any] = {
            "query": query,
            "floor": COMMON_FLOOR,
            "fraction": self.common_fraction,
            "title_weight": self.title_weight,
        }
        async with self._conn() as conn, conn.transaction():
            await conn.execute(
                sql.SQL("SET LOCAL hnsw.ef_search = {}").format(sql.Literal(self.ef_search))
            )
            lexical = await conn.execute(_LEXICAL_SQL, {**params, "limit": self.candidates})
            lexical_ids = [row[0] for row in await lexical.fetchall()]
            nearest = await conn.execute(
                sql.SQL(_VECTOR_SQL).format(vtype=self._vector_type, dim=sql.Literal(self._dim)),
                (vector, self.candidates),
            )
            vector_ids = [row[0] for row in await nearest.fetchall()]
            union = list(dict.fromkeys(lexical_ids + vector_ids))
            details = await conn.execute(_DETAIL_SQL, {**params, "vector": vector, "ids": union})
            found = {
                row[0]: _Candidate(
                    id=row[0],
                    document=row[1],
                    section=row[2],
                    text=row[3],
                    similarity=float(row[4]) if row[4] is not None else 0.0,
                    lexical=float(row[5]),
                    coverage=float(row[6] or 0.0),
                )
                for row in await details.fetchall()
            }
        for rank, chunk_id in enumerate(lexical_ids, start=1):
            found[chunk_id].lexical_rank = rank
        for rank, chunk_id in enumerate(vector_ids, start=1):
            found[chunk_id].vector_rank = rank
        return found


# Query lexemes with their inverse document frequency (BM25's, always positive). A word
# absent from the base keeps the highest idf: it is evidence the question is about
# something the base does not cover. `common` marks words too frequent to select by.
_TERMS_SQL = """
WITH corpus AS (
    SELECT greatest(coalesce(max(chunks), 0), 1)::float8 AS n FROM knowledge_corpus
), terms AS (
    SELECT lexeme, coalesce(t.ndoc, 0) AS ndoc,
           ln(1 + (c.n - coalesce(t.ndoc, 0) + 0.5) / (coalesce(t.ndoc, 0) + 0.5)) AS idf,
           coalesce(t.ndoc, 0) > greatest(%(floor)s, %(fraction)s * c.n) AS common,
           to_tsquery('simple', quote_literal(lexeme)) AS q,
           to_tsquery('simple', quote_literal(lexeme) || ':A') AS qa
    FROM unnest(tsvector_to_array(to_tsvector('english', %(query)s))) AS lexeme
    LEFT JOIN knowledge_terms t USING (lexeme) CROSS JOIN corpus c
)
"""

# Score = sum of idf over the query words a chunk contains, a word in the section title
# counting (1 + title_weight) times: presence, not term frequency, because chunks are
# short and one mention of "webhook" is as much about webhooks as three.
_SCORE = """
(SELECT coalesce(sum(t.idf * CASE WHEN kb.tsv @@ t.qa THEN 1 + %(title_weight)s
                                  WHEN kb.tsv @@ t.q THEN 1 ELSE 0 END), 0)
 FROM terms t WHERE t.ndoc > 0)
"""

_LEXICAL_SQL = (
    _TERMS_SQL
    + """, query AS (
    SELECT coalesce(
        (SELECT fte_tsquery_or(q) FROM terms WHERE ndoc > 0 AND NOT common),
        plainto_tsquery('english', %(query)s)) AS q
)
SELECT kb.id, """
    + _SCORE
    + """ AS score FROM knowledge_base kb
WHERE kb.tsv @@ (SELECT q FROM query)
ORDER BY score DESC, kb.id
LIMIT %(limit)s
"""
)

_VECTOR_SQL = """
SELECT id FROM knowledge_base
WHERE dim = {dim}
ORDER BY embedding::{vtype} <=> %s::{vtype}
LIMIT %s
"""

# Similarity is NULL for rows of another dimension (left over from a previous embedder).
# `coverage` is the share of the question's idf mass the chunk contains (titles not
# counted twice), the lexical half of the no-match decision.
_DETAIL_SQL = (
    _TERMS_SQL
    + """
SELECT kb.id, kb.document, kb.section, kb.chunk_text,
       CASE WHEN vector_dims(kb.embedding) = vector_dims(%(vector)s::vector)
            THEN 1 - (kb.embedding <=> %(vector)s::vector) END,
       """
    + _SCORE
    + """,
       (SELECT coalesce(sum(t.idf) FILTER (WHERE kb.tsv @@ t.q), 0)
               / nullif(sum(t.idf), 0) FROM terms t)
FROM knowledge_base kb WHERE kb.id = ANY(%(ids)s)
"""
)
