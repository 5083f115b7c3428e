"""InMemoryKnowledgeBase: the KnowledgeBase contract with plain lexical BM25 search.

Scores are BM25 over the stemmed, stopword-free words of a chunk's section, text and
aliases (idf = ln(1 + (N - n + 0.5) / (n + 0.5)), always positive). A passage scoring below
`threshold` is not returned, so a question sharing no distinctive word with the base
gets [] and the pipeline escalates with `no_kb_match`. With the default threshold one
distinctive matching word is enough; a word present in every chunk is not.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import msgspec

from fte_core.chunking import check_chunks, chunk_hash
from fte_core.embedding import words
from fte_core.models import Passage
from fte_core.ports import Chunk, IngestReport

_K1 = 1.2
_B = 0.75


class _Entry(msgspec.Struct, frozen=True, kw_only=True):
    chunk: Chunk
    digest: str
    terms: Counter[str]
    length: int


class InMemoryKnowledgeBase:
    def __init__(self, *, threshold: float = 1.0) -> None:
        self.threshold = threshold
        self._entries: dict[str, _Entry] = {}
        self.embedded_ids: list[str] = []  # chunk ids (re)indexed, oldest first: for tests

    async def ingest(self, document: str, chunks: Sequence[Chunk]) -> IngestReport:
        wanted = check_chunks(document, chunks)
        old = {k: e for k, e in self._entries.items() if e.chunk.document == document}
        added = updated = unchanged = 0
        for chunk_id, chunk in wanted.items():
            digest = chunk_hash(chunk)
            previous = old.get(chunk_id)
            if previous is not None and previous.digest == digest:
                unchanged += 1
                continue
            if previous is None:
                added += 1
            else:
                updated += 1
            self._entries[chunk_id] = self._entry(chunk, digest)
            self.embedded_ids.append(chunk_id)
        removed = [chunk_id for chunk_id in old if chunk_id not in wanted]
        for chunk_id in removed:
            del self._entries[chunk_id]
        return IngestReport(added=added, updated=updated, removed=len(removed), unchanged=unchanged)

    @staticmethod
    def _entry(chunk: Chunk, digest: str) -> _Entry:
        terms = Counter(words(" ".join((chunk.section, chunk.text, *chunk.aliases))))
        return _Entry(chunk=chunk, digest=digest, terms=terms, length=sum(terms.values()))

    @property
    def embedder_name(self) -> str | None:
        return None  # lexical: no vectors

    async def embed_queries(self, queries: Sequence[str]) -> list[list[float]]:
        """A lexical base has no vectors: one empty list per query."""
        return [[] for _ in queries]

    async def search(
        self, query: str, limit: int = 5, *, embedding: Sequence[float] | None = None
    ) -> list[Passage]:
        """`embedding` is accepted (the port's signature) and unused: BM25 only."""
        query_terms = set(words(query))
        if not query_terms or not self._entries or limit <= 0:
            return []
        entries = list(self._entries.values())
        average = sum(e.length for e in entries) / len(entries) or 1.0
        idf = self._idf(query_terms, entries)
        scored = [(self._score(e, idf, average), e) for e in entries]
        ranked = sorted(
            (pair for pair in scored if pair[0] >= self.threshold and pair[0] > 0),
            key=lambda pair: (-pair[0], pair[1].chunk.id),
        )
        return [_passage(entry.chunk, score) for score, entry in ranked[:limit]]

    @staticmethod
    def _idf(terms: set[str], entries: list[_Entry]) -> dict[str, float]:
        total = len(entries)
        result: dict[str, float] = {}
        for term in terms:
            having = sum(1 for e in entries if term in e.terms)
            if having:
                result[term] = math.log(1 + (total - having + 0.5) / (having + 0.5))
        return result

    @staticmethod
    def _score(entry: _Entry, idf: dict[str, float], average: float) -> float:
        score = 0.0
        for term, weight in idf.items():
            tf = entry.terms.get(term, 0)
            if tf:
                norm = _K1 * (1 - _B + _B * entry.length / average)
                score += weight * tf * (_K1 + 1) / (tf + norm)
        return score


def _passage(chunk: Chunk, score: float) -> Passage:
    return Passage(
        id=chunk.id, document=chunk.document, section=chunk.section, text=chunk.text, score=score
    )
