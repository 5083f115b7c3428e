"""PostgresKnowledgeBase: hybrid search (full text + pgvector HNSW), fused by reciprocal rank.

Search takes the `candidates` best chunks by full-text score (any query word may match: OR
semantics; score = sum of the idf of the query words the chunk contains, a word in the
section title counting 1 + `title_weight` times: migration 0005 labels titles weight A)
and the `candidates` nearest by cosine distance through the HNSW index (hnsw.ef_search =
`ef_search`). For the union of both lists it then reads, exactly, the cosine of the
question with each chunk's title and its best sentence (vectors stored at ingest,
migration 0006), and hands everything to fte_core.ranking: weighted reciprocal rank
fusion over the four lists and the no-match decision, both calibrated per embedder
(`calibration`, default fte_core.ranking.calibration_for(embedder.name)).

The query's vector can be passed in (`search(..., embedding=...)`, computed once per
message by `embed_queries`); otherwise search embeds the query itself. Only rows embedded
by this base's embedder take part in the vector half: a row another model embedded (same
dimension or not) is re-embedded by the next ingest of its document.

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

import psycopg
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from adapters.storage.postgres.pool import connection
from fte_core.chunking import check_chunks, chunk_hash
from fte_core.errors import StorageError, ValidationError
from fte_core.models import Passage
from fte_core.ports import Chunk, Embedder, IngestReport
from fte_core.ranking import (
    Calibration,
    Candidate,
    Ranked,
    calibration_for,
    rank,
    select,
    sentence_text,
    sentences_of,
)
from fte_core.retrieval import lexical_query, reformulate

log = logging.getLogger(__name__)

Conn = psycopg.AsyncConnection[Any]

COMMON_FLOOR = 500
# how many chunks the full-text half may select and score for one question (see
# CANDIDATE_CTES): the shipped base never reaches it; at 100k chunks the slowest searches
# are those whose words select many chunks (interleaved A/B, p99: 500 -> 300 -15 %,
# 300 -> 200 -11 %, the top 3 unchanged for 96 % of questions)
LEXICAL_BUDGET = 200
# per list: at 100k chunks 50 cost 25 % more time per search (the evidence is read for
# the union of both lists) and changed no answer of the tuning and held-out sets, nor
# `fte kb eval`'s recall
CANDIDATES = 30
# below it, a search reuses its plan (see PostgresKnowledgeBase.ef_sql)
GENERIC_PLAN_CHUNKS = 1_000
_QUERY_WORD = re.compile(r"\w+")
_MAX_QUERY_CHARS = 2000
_EMBED_BATCH = 256


def ef_search_for(candidates: int) -> int:
    """The HNSW search breadth for a list of `candidates` (recall@10 at 100k chunks:
    tests/perf/test_kb_semantic_bench.py)."""
    return max(40, 2 * candidates)


def vector_literal(vector: Sequence[float]) -> str:
    """pgvector's text form; works whether or not the connection registered its types."""
    return "[" + ",".join(f"{v:.7g}" for v in vector) + "]"


def vector_array_literal(vectors: Sequence[Sequence[float]]) -> str:
    """A `vector[]` in PostgreSQL's array text form."""
    return "{" + ",".join(f'"{vector_literal(v)}"' for v in vectors) + "}"


class PostgresKnowledgeBase:
    def __init__(
        self,
        pool: AsyncConnectionPool[Any],
        embedder: Embedder,
        *,
        calibration: Calibration | None = None,
        candidates: int = CANDIDATES,
        common_fraction: float = 0.05,
        ef_search: int | None = None,
        title_weight: float = 1.0,
    ) -> None:
        self._pool = pool
        self._embedder = embedder
        self.calibration = calibration or calibration_for(embedder.name)
        self.candidates = candidates
        self.common_fraction = common_fraction
        self.title_weight = title_weight
        # Recall vs latency: see tests/perf/test_kb_search_bench.py for measured figures.
        self.ef_search = int(ef_search) if ef_search else ef_search_for(candidates)
        self._dim = int(embedder.dimension)
        self._index_ready = False
        self._vector_type = sql.SQL("vector({})").format(sql.Literal(self._dim))
        self._search_sql = self.candidate_sql(_SEARCH_SQL)

    def candidate_sql(self, statement: str) -> sql.Composed:
        """A statement over CANDIDATE_CTES for this base's dimension."""
        return sql.SQL(statement).format(vtype=self._vector_type, dim=sql.Literal(self._dim))

    @property
    def ef_sql(self) -> sql.Composed:
        """Per search transaction: the HNSW beam width, and the plan. A base of fewer than
        GENERIC_PLAN_CHUNKS chunks reuses one plan per connection once psycopg has
        prepared the statement (its fifth run there; planning cost ~0.6 ms, a fifth of a
        search at 67 chunks; at 1,066 chunks both ways cost the same). A larger base gets
        a plan made for the actual question every time: a generic plan cannot see the
        tsquery's selectivity (at 5,055 chunks it made two runs in three 2.5x slower, at
        100k chunks 5x; the default may switch to it unasked). No JIT: the statement's
        estimated cost (~3,500 at 100k chunks) is far below the default jit_above_cost,
        but a server tuned lower, or a bad estimate on a larger base, would compile it on
        every search for tens of milliseconds."""
        return sql.SQL(
            "SELECT set_config('hnsw.ef_search', {}, true),"
            " set_config('plan_cache_mode', CASE WHEN (SELECT max(chunks) FROM knowledge_corpus)"
            " < {} THEN 'force_generic_plan' ELSE 'force_custom_plan' END, true),"
            " set_config('jit', 'off', true)"
        ).format(sql.Literal(str(self.ef_search)), sql.Literal(GENERIC_PLAN_CHUNKS))

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
                """SELECT id, content_hash, embedder,
                          sentence_embeddings IS NOT NULL AND alias_embeddings IS NOT NULL
                   FROM knowledge_base WHERE document = %s""",
                (document,),
            )
            stored = {row[0]: (row[1], row[2], row[3]) for row in await cursor.fetchall()}
        name = self._embedder.name
        hashes = {chunk_id: chunk_hash(chunk) for chunk_id, chunk in wanted.items()}
        changed = [c for i, c in wanted.items() if stored.get(i) != (hashes[i], name, True)]
        removed = [i for i in stored if i not in wanted]
        embedded = await self._embed_chunks(changed)
        async with self._conn() as conn, conn.transaction():
            if removed:
                await conn.execute("DELETE FROM knowledge_base WHERE id = ANY(%s)", (removed,))
            for chunk, (vector, title, sentences, asked) in zip(changed, embedded, strict=True):
                await conn.execute(
                    """INSERT INTO knowledge_base (id, document, section, chunk_text,
                           content_hash, embedder, dim, embedding, title_embedding,
                           sentence_embeddings, aliases, alias_embeddings)
                       VALUES (%s, %s, %s, %s, %s, %s, %s, %s::vector, %s::vector,
                               %s::vector[], %s, %s::vector[])
                       ON CONFLICT (id) DO UPDATE SET document = excluded.document,
                           section = excluded.section, chunk_text = excluded.chunk_text,
                           content_hash = excluded.content_hash, embedder = excluded.embedder,
                           dim = excluded.dim, embedding = excluded.embedding,
                           title_embedding = excluded.title_embedding,
                           sentence_embeddings = excluded.sentence_embeddings,
                           aliases = excluded.aliases,
                           alias_embeddings = excluded.alias_embeddings,
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
                        vector_literal(title),
                        vector_array_literal(sentences),
                        "\n".join(chunk.aliases),
                        vector_array_literal(asked),
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
            " SELECT word, ndoc FROM ts_stat('SELECT tsv FROM knowledge_lexemes')"
        )
        await conn.execute(
            """INSERT INTO knowledge_corpus (chunks) SELECT count(*) FROM knowledge_base
               ON CONFLICT (singleton) DO UPDATE SET chunks = excluded.chunks"""
        )

    async def _embed_chunks(
        self, chunks: Sequence[Chunk]
    ) -> list[tuple[list[float], list[float], list[list[float]], list[list[float]]]]:
        """(chunk vector, title vector, sentence vectors, alias vectors) per chunk, in
        one batched pass."""
        texts: list[str] = []
        spans: list[tuple[int, int, int]] = []
        for chunk in chunks:
            sentences = sentences_of(chunk.text) or [chunk.text]
            start = len(texts)
            texts += [f"{chunk.section}\n{chunk.text}", chunk.section]
            texts += [sentence_text(chunk.section, s) for s in sentences]
            middle = len(texts)
            texts += list(chunk.aliases)
            spans.append((start, middle, len(texts)))
        vectors = await self._embed(texts)
        return [(vectors[a], vectors[a + 1], vectors[a + 2 : m], vectors[m:b]) for a, m, b in spans]

    @property
    def embedder_name(self) -> str | None:
        return self._embedder.name

    async def embed_queries(self, queries: Sequence[str]) -> list[list[float]]:
        """The queries' vectors by this base's embedder, in one call (see the port), each
        embedded as search reads it: without the brand name (`lexical_query`)."""
        texts = [lexical_query(q[:_MAX_QUERY_CHARS]) for q in queries]
        return await self._embed(texts) if texts else []

    async def _embed(self, texts: list[str]) -> list[list[float]]:
        vectors: list[list[float]] = []
        for start in range(0, len(texts), _EMBED_BATCH):
            vectors.extend(await self._embedder.embed(texts[start : start + _EMBED_BATCH]))
        if len(vectors) != len(texts) or any(len(v) != self._dim for v in vectors):
            raise StorageError(f"embedder {self._embedder.name} returned malformed vectors")
        return vectors

    async def search(
        self, query: str, limit: int = 5, *, embedding: Sequence[float] | None = None
    ) -> list[Passage]:
        query = query[:_MAX_QUERY_CHARS]
        if not _QUERY_WORD.search(query) or limit <= 0:
            return []
        ranked = await self.evidence(query, embedding=embedding)
        chosen = select(ranked, self.calibration, limit)
        return [
            Passage(
                id=r.candidate.id,
                document=r.candidate.document,
                section=r.candidate.section,
                text=r.candidate.text,
                score=r.fused,
                focus=r.candidate.focus(),
                share=r.share,
            )
            for r in chosen
        ]

    async def evidence(
        self, query: str, *, embedding: Sequence[float] | None = None
    ) -> list[Ranked]:
        """Every candidate with its evidence, fused, before the no-match decision (search
        uses it; `fte kb calibrate` fits the decision on it)."""
        query = query[:_MAX_QUERY_CHARS]
        if not _QUERY_WORD.search(query):
            return []
        await self.prepare()
        if embedding is None:
            (vector,) = await self._embed([lexical_query(query)])
        elif len(embedding) != self._dim:
            raise ValidationError("embedding", f"expected {self._dim} numbers")
        else:
            vector = list(embedding)
        found = await self._candidates(query, vector_literal(vector))
        return rank(found, self.calibration.fusion)

    def search_params(self, question: str, vector: str) -> dict[str, Any]:
        """The search statement's parameters for one question and its vector literal."""
        query = lexical_query(question)
        return {
            "query": query,
            "content": reformulate(query, None) or query,
            "vector": vector,
            "limit": self.candidates,
            "embedder": self._embedder.name,
            "floor": COMMON_FLOOR,
            "fraction": self.common_fraction,
            "title_weight": self.title_weight,
            "budget": LEXICAL_BUDGET,
        }

    async def _candidates(self, query: str, vector: str) -> list[Candidate]:
        """Both candidate lists and their evidence in one statement, sent with its
        transaction in one pipeline: at 100k chunks each extra round trip cost more
        than the statement it carried (a loaded machine wakes two processes for each)."""
        params = self.search_params(query, vector)
        async with self._conn() as conn, conn.pipeline(), conn.transaction():
            await conn.execute(self.ef_sql)
            cursor = await conn.execute(self._search_sql, params)
            rows = await cursor.fetchall()
        return [_candidate(row) for row in rows]


def _candidate(row: tuple[Any, ...]) -> Candidate:
    return Candidate(
        id=row[0],
        document=row[1],
        section=row[2],
        text=row[3],
        similarity=float(row[4] or 0.0),
        coverage=float(row[5] or 0.0),
        title_similarity=float(row[6] or 0.0),
        sentence_similarity=float(row[8] or 0.0),
        alias_similarity=float(row[9] or 0.0),
        lexical_rank=row[10],
        vector_rank=row[11],
        unknown=float(row[12] or 0.0),
        best_sentence=row[7] or 0,
    )


# Query lexemes with their inverse document frequency (BM25's, always positive). A word
# absent from the base keeps the highest idf: it is evidence the question is about
# something the base does not cover. `common` marks words too frequent to select by.
# `terms` are the lexical question's words; `content_terms` its content words only
# (greetings and chat filler are not evidence the base lacks anything).
_TERMS = """
{name} AS MATERIALIZED (
    SELECT lexeme, coalesce(t.ndoc, 0) AS ndoc,
           ln(1 + (c.n - coalesce(t.ndoc, 0) + 0.5) / (coalesce(t.ndoc, 0) + 0.5)) AS idf,
           coalesce(t.ndoc, 0) > greatest(%(floor)s, %(fraction)s * c.n) AS common,
           to_tsquery('simple', quote_literal(lexeme)) AS q,
           to_tsquery('simple', quote_literal(lexeme) || ':A') AS qa
    FROM unnest(tsvector_to_array(to_tsvector('english', %({param})s))) AS lexeme
    LEFT JOIN knowledge_terms t USING (lexeme) CROSS JOIN corpus c
)"""

# Score = sum of idf over the query words a chunk contains, a word in the section title
# counting (1 + title_weight) times: presence, not term frequency, because chunks are
# short and one mention of "webhook" is as much about webhooks as three.
_SCORE = """
(SELECT coalesce(sum(t.idf * CASE WHEN kb.tsv @@ t.qa THEN 1 + %(title_weight)s
                                  WHEN kb.tsv @@ t.q THEN 1 ELSE 0 END), 0)
 FROM terms t WHERE t.ndoc > 0)
"""

# The candidate lists, as CTEs (tests/perf times each one alone: `SELECT ... FROM lexical`).
# `lexical`: the OR query takes the query words rarest first while the chunks containing
# them number at most %(budget)s (the rarest word always): every chunk it selects is
# scored, and at 100k chunks one mid-frequency word would select thousands. A base small
# enough never reaches the budget and keeps every word. It reads knowledge_lexemes, the
# narrow copy of each chunk's tsvector (migration 0018), not the wide knowledge_base rows.
# `nearest`: through the HNSW index
# of this dimension ({dim}, {vtype} are filled in per embedder).
CANDIDATE_CTES = (
    "WITH corpus AS (\n"
    "    SELECT greatest(coalesce(max(chunks), 0), 1)::float8 AS n FROM knowledge_corpus\n"
    "),"
    + _TERMS.replace("{name}", "terms").replace("{param}", "query")
    + ","
    + _TERMS.replace("{name}", "content_terms").replace("{param}", "content")
    + """, chosen AS (
    SELECT q, ndoc, sum(ndoc) OVER (ORDER BY ndoc, lexeme) - ndoc AS rarer
    FROM terms WHERE ndoc > 0 AND NOT common
), query AS (
    SELECT coalesce(
        (SELECT fte_tsquery_or(q) FROM chosen WHERE rarer = 0 OR rarer + ndoc <= %(budget)s),
        plainto_tsquery('english', %(query)s)) AS q
), lexical AS MATERIALIZED (
    SELECT id, row_number() OVER (ORDER BY score DESC, id) AS rank FROM (
        SELECT kb.id, """
    + _SCORE
    + """ AS score FROM knowledge_lexemes kb
        WHERE kb.tsv @@ (SELECT q FROM query)
        ORDER BY score DESC, kb.id
        LIMIT %(limit)s
    ) found
), nearest AS MATERIALIZED (
    SELECT id, row_number() OVER (ORDER BY distance, id) AS rank FROM (
        SELECT id, embedding::{vtype} <=> %(vector)s::{vtype} AS distance
        FROM knowledge_base
        WHERE dim = {dim} AND embedder = %(embedder)s
        ORDER BY embedding::{vtype} <=> %(vector)s::{vtype}
        LIMIT %(limit)s
    ) found
)
"""
)

# For the union of both lists, the evidence: vector evidence only from rows this base's
# embedder embedded (NULL otherwise): chunk cosine, the share of the question's idf mass
# the chunk contains (the lexical half of the no-match decision), title cosine, the
# closest sentence (index, cosine) and the closest alias (cosine); then both ranks and
# the share of the question's content idf mass in words no chunk contains.
_SEARCH_SQL = (
    CANDIDATE_CTES
    + """
SELECT kb.id, kb.document, kb.section, kb.chunk_text,
       CASE WHEN kb.embedder = %(embedder)s
            THEN 1 - (kb.embedding <=> %(vector)s::vector) END,
       (SELECT coalesce(sum(t.idf) FILTER (WHERE kb.tsv @@ t.q), 0)
               / nullif(sum(t.idf), 0) FROM terms t),
       CASE WHEN kb.embedder = %(embedder)s
            THEN 1 - (kb.title_embedding <=> %(vector)s::vector) END,
       best.i, best.similarity,
       CASE WHEN kb.embedder = %(embedder)s
            THEN (SELECT max(1 - (a.v <=> %(vector)s::vector))
                  FROM unnest(kb.alias_embeddings) AS a(v)) END,
       l.rank, n.rank,
       (SELECT coalesce(sum(idf) FILTER (WHERE ndoc = 0), 0) / nullif(sum(idf), 0)
        FROM content_terms)
FROM (SELECT id FROM lexical UNION SELECT id FROM nearest) u
JOIN knowledge_base kb ON kb.id = u.id
LEFT JOIN lexical l ON l.id = u.id
LEFT JOIN nearest n ON n.id = u.id
LEFT JOIN LATERAL (
    SELECT s.i, 1 - (s.v <=> %(vector)s::vector) AS similarity
    FROM unnest(CASE WHEN kb.embedder = %(embedder)s THEN kb.sentence_embeddings END)
         WITH ORDINALITY AS s(v, i)
    ORDER BY s.v <=> %(vector)s::vector
    LIMIT 1
) best ON true
ORDER BY l.rank NULLS LAST, n.rank
"""
)
