"""`similar_to`: a rule fires on meaning, when the message is close to one of its examples.

Each rule with `similar_to` has a *slot*: its `match` examples plus extra `exemplars`,
embedded once when the rules load. A message is embedded once; its score for a slot is
the highest cosine similarity to the slot's texts, as an integer in basis points
(0..10,000), so both evaluators compare numbers on the same grid as the threshold.

A threshold is only meaningful for the embedder it was calibrated with (a hashing
vectoriser and a sentence model put unrelated texts at very different cosines), so
loading refuses a rule calibrated for another embedder, or not calibrated at all, with a
message saying to run `fte rules calibrate`: a guardrail condition is never silently
dropped or mis-scaled.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Coroutine, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from fte_core.errors import PolicyError, RuleError
from fte_core.policy.compiled import SimilaritySlot, StageRules
from fte_core.ports import Embedder
from fte_core.retrieval import embedded_text, questions_of
from fte_core.text import normalize

Vector = tuple[float, ...]


@runtime_checkable
class LocalEmbedder(Protocol):
    """An embedder that can also compute in the caller's thread (the MiniLM model: its
    `embed` hands the work to a thread so the event loop keeps serving)."""

    def embed_now(self, texts: Sequence[str]) -> list[list[float]]: ...


def embed_now(embedder: Embedder, texts: Sequence[str]) -> list[Vector]:
    """Embed without an event loop.

    The rules are evaluated synchronously (microseconds, inside a lock); an embedder that
    computes locally (the hashing embedder, an ONNX model) finishes without awaiting. One
    that waits on the network cannot serve the guardrails: that is an error, not a wait.
    """
    if isinstance(embedder, LocalEmbedder):
        return [unit(v) for v in embedder.embed_now(list(texts))]
    coroutine: Coroutine[Any, Any, list[list[float]]] = embedder.embed(list(texts))
    try:
        coroutine.send(None)
    except StopIteration as done:
        return [unit(v) for v in done.value]
    coroutine.close()
    raise PolicyError(
        f"embedder {embedder.name!r} waits on I/O; similar_to rules need an embedder "
        "that computes locally"
    )


def similarity_probes(text: str) -> tuple[str, ...]:
    """The texts an inbound message's `similar_to` conditions compare: its questions, each
    as retrieval embeds it, so the pipeline's one embedding per question serves both (a
    security worry in the second question is not diluted by the first). A message with
    no question-like part is compared whole."""
    return tuple(embedded_text(q) for q in questions_of(text, None)) or (normalize(text),)


def embed_probes(embedder: Embedder, texts: Sequence[str], stage: str) -> list[tuple[Vector, ...]]:
    """Each text's probe vectors (`similarity_probes` for the input stage, the whole text
    for the output stage), all in one call."""
    probes = [similarity_probes(t) if stage == "input" else (normalize(t),) for t in texts]
    flat = embed_now(embedder, [p for group in probes for p in group]) if texts else []
    vectors, start = [], 0
    for group in probes:
        vectors.append(tuple(flat[start : start + len(group)]))
        start += len(group)
    return vectors


class RecentVectors:
    """The unit vectors of the last `size` probe texts an embedder computed, oldest
    forgotten first. A draft's own words repeat: the offline responder writes the same
    introduction for every answer from one article ("From our help article "X":"), so
    after the first answer from an article its draft costs no embedding (~3.5 ms of CPU
    with MiniLM); a model's drafts are new text and miss. Exact text only: a vector is a
    function of the text, so a remembered one is the one the embedder would return."""

    def __init__(self, embedder: Embedder, size: int = 512) -> None:
        self.embedder = embedder
        self._size = size
        self._vectors: OrderedDict[str, Vector] = OrderedDict()
        self._lock = threading.Lock()

    async def embed(self, texts: Sequence[str]) -> tuple[Vector, ...]:
        found = self._known(texts)
        missing = [t for t in dict.fromkeys(texts) if t not in found]
        if missing:
            fresh = [unit(v) for v in await self.embedder.embed(missing)]
            if len(fresh) != len(missing):
                raise PolicyError(
                    f"embedder {self.embedder.name!r}: {len(fresh)} vectors"
                    f" for {len(missing)} texts"
                )
            found.update(zip(missing, fresh, strict=True))
            with self._lock:
                self._vectors.update(zip(missing, fresh, strict=True))
                while len(self._vectors) > self._size:
                    self._vectors.popitem(last=False)
        return tuple(found[t] for t in texts)

    def _known(self, texts: Sequence[str]) -> dict[str, Vector]:
        with self._lock:
            known = {t: self._vectors[t] for t in texts if t in self._vectors}
            for text in known:
                self._vectors.move_to_end(text)
        return known


def unit(vector: Sequence[float]) -> Vector:
    norm = math.sqrt(sum(v * v for v in vector))
    return tuple(v / norm for v in vector) if norm else tuple(vector)


def best_score(vector: Vector, exemplars: Sequence[Vector]) -> int:
    """The highest cosine to any exemplar, in basis points, clamped to 0..10,000."""
    if not exemplars:
        return 0
    best = max(0.0, float(np.max(_matrix(exemplars) @ np.asarray(vector, dtype=np.float64))))
    return min(10_000, round(best * 10_000))


def _matrix(exemplars: Sequence[Vector]) -> np.ndarray[Any, np.dtype[np.float64]]:
    return np.asarray(exemplars, dtype=np.float64)


def check_calibrated(slot: SimilaritySlot, embedder: Embedder) -> str | None:
    if slot.calibrated and slot.embedder == embedder.name:
        return None
    if not slot.calibrated_for:
        return "similar_to has no calibrated threshold: run `fte rules calibrate`"
    known = ", ".join(repr(name) for name in slot.calibrated_for)
    return (
        f"similar_to was calibrated for embedder {known} but the active embedder is "
        f"{embedder.name!r}: run `fte rules calibrate` to recalibrate"
    )


class SimilarityIndex:
    """A stage's exemplar vectors; scores a message against every slot."""

    def __init__(self, stage: StageRules, embedder: Embedder, where: dict[str, tuple[str, int]]):
        self.embedder = embedder
        for slot in stage.similarity:
            problem = check_calibrated(slot, embedder)
            if problem:
                file, line = where.get(slot.rule_id, (None, None))
                raise RuleError(problem, file=file, line=line, rule_id=slot.rule_id)
        # Every slot's exemplars stacked in one matrix (one product per message), each
        # slot a run of rows starting at its offset; an empty slot scores 0.
        texts = [normalize(t) for slot in stage.similarity for t in slot.texts]
        self._matrix = _matrix(embed_now(embedder, texts)) if texts else None
        sizes = [len(slot.texts) for slot in stage.similarity]
        last = max(0, len(texts) - 1)  # an empty last slot would start past the end
        self._starts = np.minimum(np.cumsum([0, *sizes[:-1]], dtype=np.intp), last)
        self._empty_slots = tuple(size == 0 for size in sizes)

    def vectors(self, texts: Sequence[str]) -> list[Vector]:
        return embed_now(self.embedder, texts)

    def best_scores(self, vectors: Sequence[Vector]) -> tuple[int, ...]:
        """Per slot, the best score of any of the message's vectors (its questions); no
        vector (nothing to compare) scores 0."""
        if not vectors:
            return (0,) * len(self._empty_slots)
        if len(vectors) == 1:
            return self.scores(vectors[0])
        per_vector = [self.scores(v) for v in vectors]
        return tuple(max(column) for column in zip(*per_vector, strict=True))

    def scores(self, vector: Vector) -> tuple[int, ...]:
        """Per slot, the best cosine in basis points clamped to 0..10,000 (half to even, as
        numpy's rint); the last steps in plain Python: numpy's per-call overhead on six
        numbers cost more than the matrix product."""
        if self._matrix is None:
            return (0,) * len(self._empty_slots)
        row = np.asarray(vector, dtype=np.float64)
        best = np.maximum.reduceat(self._matrix @ row, self._starts).tolist()
        return tuple(
            0 if empty else min(10_000, max(0, round(cosine * 10_000)))
            for cosine, empty in zip(best, self._empty_slots, strict=True)
        )
