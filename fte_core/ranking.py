"""Fusing a knowledge base's candidate lists, and deciding whether anything answers.

A knowledge base hands over its candidates (chunks found by full text or by the nearest
chunk vectors) with their evidence: the ranks in those two lists, the cosine of the
question with the whole chunk, with the chunk's best sentence (each sentence embedded
after its section title, "Deleting a workspace. Only the Owner can ..."), with the
title alone and with the closest of the section's aliases (how customers ask for it:
"kick someone out of the team" for "Removing a member"), and `coverage`, the share of the
question's idf mass the chunk contains.

Ranking is weighted reciprocal rank fusion over five lists: full text, chunk vector, best
sentence, title and alias (the last three ranked among the candidates: an exact re-rank
of the top of the first two). A question is answerable when a logistic model over the top
candidate's evidence (coverage, best-sentence and chunk cosine, fused score, the margin
to the best candidate of another section, and the share of the question's distinctive
words the base never uses: "dark mode", "CEO", "Salesforce") says so. The passages of an
answerable question are then put in the order of a learned linear ranker over each
candidate's reciprocal ranks and raw evidence (`Fusion.learned`, `reorder`): the fusion
only counts places in lists, the ranker also how close an alias or a sentence really is,
and tells neighbouring sections apart better. Weights and models are fitted per embedder
(`fte kb calibrate`), because cosines mean different things for different models: MiniLM
puts unrelated text near 0.1, the hashing embedder near 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import lru_cache

import msgspec

from fte_core.errors import ValidationError
from fte_core.formatting import split_sentences


class Candidate(msgspec.Struct, kw_only=True):
    id: str
    document: str
    section: str
    text: str
    lexical_rank: int | None = None  # 1-based, in the full-text list
    vector_rank: int | None = None  # 1-based, in the nearest-chunk list
    similarity: float = 0.0  # cosine with the chunk
    sentence_similarity: float = 0.0  # cosine with the best title-prefixed sentence
    title_similarity: float = 0.0
    alias_similarity: float = 0.0  # cosine with the closest alias (0: none)
    coverage: float = 0.0  # share of the question's idf mass found in the chunk
    unknown: float = 0.0  # share of the question's idf mass the whole base never uses
    best_sentence: int = 0  # 1-based index of the closest sentence (0: unknown)

    def focus(self) -> str:
        """The sentence that matched best; split only for the passages returned (a
        search reads ~100 candidates, and splitting each cost more than ranking them)."""
        if self.best_sentence <= 0:
            return ""
        sentences = sentences_of(self.text)
        return sentences[self.best_sentence - 1] if self.best_sentence <= len(sentences) else ""


class Fusion(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Reciprocal rank fusion of the five lists; `learned`, when given, weighs
    RANKER_FEATURES for the final order of an answerable question's passages (`reorder`)."""

    k: int = 60
    lexical: float = 1.0
    vector: float = 1.0
    sentence: float = 2.0
    title: float = 1.0
    alias: float = 0.0
    learned: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if self.learned and len(self.learned) != len(RANKER_FEATURES):
            raise ValidationError("learned", f"needs {len(RANKER_FEATURES)} weights")

    @property
    def best(self) -> float:
        """The fused score of a candidate first in every list (scores are divided by it)."""
        weights = self.lexical + self.vector + self.sentence + self.title + self.alias
        return weights / (self.k + 1)


# What the learned ranker weighs for each candidate: its reciprocal rank 1 / (k + rank) in
# each of the five lists (0 when absent), then the raw evidence the lists were sorted by.
RANKER_FEATURES = (
    "lexical_rr",
    "vector_rr",
    "sentence_rr",
    "title_rr",
    "alias_rr",
    "similarity",
    "sentence_similarity",
    "title_similarity",
    "alias_similarity",
    "coverage",
)


FEATURES = (
    "coverage",
    "similarity",
    "sentence_similarity",
    "fused",
    "margin",
    "unknown",
    "alias_similarity",
)


class NoMatchModel(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Logistic regression over FEATURES of the top candidate: answerable if p >= cut."""

    weights: tuple[float, ...]
    bias: float
    cut: float = 0.5

    def probability(self, features: Sequence[float]) -> float:
        z = self.bias + sum(w * x for w, x in zip(self.weights, features, strict=True))
        return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z))))


class Calibration(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    embedder: str  # the embedder name prefix it was fitted for
    fusion: Fusion
    no_match: NoMatchModel
    # further passages are returned only with at least this share of the top fused score
    keep_ratio: float = 0.6


class Ranked(msgspec.Struct, frozen=True, kw_only=True):
    candidate: Candidate
    fused: float  # in [0, 1]: 1 is first in every list
    # the learned ranker's probability that this is the passage asked for, among those
    # `select` returns (its softmax); 0: unknown (no learned ranker, or not selected)
    share: float = 0.0


# Fitted by `fte kb calibrate --max-false-escalation 0.01` on context/sample-tickets.json,
# context/retrieval-holdout.json and tests/cases/tuning-answers.json (never on
# tests/cases/heldout-answers.json): 770 answerable questions (each question of a
# multi-question message counted) and 128 off-topic ones. recall@1 0.956 with the learned
# ranker (0.931 by the fusion alone); off-topic recall 0.625 at 0.9 % false hand-over of
# answerable ones. With the brand name still in the embedded question (and 10 phrasings
# fewer) the same data gave 0.943 and 0.516 at 0.9 %: "Tasklane" in an off-topic question
# pulled it towards the sign-up section. 1 % rather than 3 %: the aliases were written
# from these questions, so they look more answerable than new ones do (158 questions
# written after the aliases were handed over at 1.9-2.5 % with a 1.5 % in-sample cut),
# and the benign false-escalation budget (5 %) is shared with every guardrail rule. Out of
# sample, the ranker fitted without those 158 questions put the right section first for
# 0.930 of them, the fusion for 0.886.
MINILM = Calibration(
    embedder="all-minilm-l6-v2",
    fusion=Fusion(
        k=20,
        lexical=2.0,
        vector=0.5,
        sentence=1.0,
        title=0.5,
        alias=1.0,
        learned=(
            19.8913,
            12.1105,
            29.4197,
            8.1717,
            28.9116,
            2.0786,
            2.9641,
            0.0423,
            4.1945,
            3.0942,
        ),
    ),
    no_match=NoMatchModel(
        weights=(4.5288, 2.5692, 3.9143, 1.1124, 0.3632, -1.7429, 4.9251),
        bias=-7.8195,
        cut=0.0909,
    ),
)
# Hashing: recall@1 0.753; off-topic recall 0.56 at 3.4 % false hand-over.
HASHING = Calibration(
    embedder="hashing",
    fusion=Fusion(k=20, lexical=1.0, vector=0.5, sentence=1.0, title=0.5),
    no_match=NoMatchModel(
        weights=(3.1087, 3.9789, 3.0358, 3.9035, 1.6084, -3.6731, 0.0), bias=-4.7102, cut=0.1826
    ),
)
# Any other model (a litellm embedding model): the MiniLM fusion, and a model that asks
# for real lexical coverage as well as a close sentence; calibrate it for better.
GENERIC = Calibration(
    embedder="",
    fusion=MINILM.fusion,
    no_match=NoMatchModel(weights=(4.0, 0.0, 6.0, 0.0, 0.0, 0.0, 0.0), bias=-5.0),
)
SHIPPED = (MINILM, HASHING)


def sentences_of(text: str) -> list[str]:
    """A chunk's sentences as the knowledge base embeds them (each after its title);
    hard-wrapped lines are joined first."""
    return list(_sentences_of(text))


@lru_cache(maxsize=8_192)
def _sentences_of(text: str) -> tuple[str, ...]:
    """Cached: the same chunks come back as candidates for question after question."""
    return tuple(s for s in split_sentences(" ".join(text.split())) if s)


def sentence_text(section: str, sentence: str) -> str:
    return f"{section}. {sentence}"


def with_cut(calibration: Calibration, cut: float) -> Calibration:
    """The same calibration answering only at no-match probability >= `cut`."""
    model = msgspec.structs.replace(calibration.no_match, cut=cut)
    return msgspec.structs.replace(calibration, no_match=model)


def calibration_for(embedder: str) -> Calibration:
    return next((c for c in SHIPPED if embedder.startswith(c.embedder)), GENERIC)


def positions(candidates: Sequence[Candidate]) -> list[tuple[int | None, ...]]:
    """Each candidate's 1-based rank in the five lists, in Fusion's order (lexical,
    vector, sentence, title, alias); None: not in that list."""
    by_sentence = _ranks(candidates, lambda c: c.sentence_similarity)
    by_title = _ranks(candidates, lambda c: c.title_similarity)
    by_alias = _ranks(candidates, lambda c: c.alias_similarity)
    return [
        (
            c.lexical_rank,
            c.vector_rank,
            by_sentence[c.id],
            by_title[c.id],
            by_alias[c.id] if c.alias_similarity else None,
        )
        for c in candidates
    ]


def rank(candidates: Sequence[Candidate], fusion: Fusion) -> list[Ranked]:
    """By reciprocal rank fusion, best first; ties broken by the sentence cosine, then
    the id (deterministic). This order and its scores decide whether anything answers
    (`features`); `reorder` then picks which candidate answers best."""
    weights = (fusion.lexical, fusion.vector, fusion.sentence, fusion.title, fusion.alias)
    scored = []
    for c, places in zip(candidates, positions(candidates), strict=True):
        total = sum(w / (fusion.k + p) for w, p in zip(weights, places, strict=True) if p)
        scored.append(Ranked(candidate=c, fused=total / fusion.best))
    # rounded: the same sum added up in another order must not break a tie differently
    scored.sort(
        key=lambda r: (-round(r.fused, 9), -r.candidate.sentence_similarity, r.candidate.id)
    )
    return scored


def ranker_features(candidates: Sequence[Candidate], k: int) -> list[tuple[float, ...]]:
    """RANKER_FEATURES of each candidate, in order."""
    return [
        (
            *(1.0 / (k + p) if p else 0.0 for p in places),
            c.similarity,
            c.sentence_similarity,
            c.title_similarity,
            c.alias_similarity,
            c.coverage,
        )
        for c, places in zip(candidates, positions(candidates), strict=True)
    ]


def reorder(ranked: Sequence[Ranked], fusion: Fusion) -> list[Ranked]:
    """The fused list in the learned ranker's order (unchanged without one); equal
    scores keep the fused order. Why two orders: the fused scores tell answerable
    questions from off-topic ones better, the ranker tells the right section from its
    neighbours better (see service/calibration.py)."""
    return [r for r, _ in _learned_order(ranked, fusion)]


def _learned_order(ranked: Sequence[Ranked], fusion: Fusion) -> list[tuple[Ranked, float]]:
    """(candidate, learned score) in the learned order; scores 0 without a ranker."""
    scores = _learned_scores(ranked, fusion)
    if not scores:
        return [(r, 0.0) for r in ranked]
    order = sorted(range(len(ranked)), key=lambda i: (-round(scores[i], 9), i))
    return [(ranked[i], scores[i]) for i in order]


def _learned_scores(ranked: Sequence[Ranked], fusion: Fusion) -> list[float]:
    if not fusion.learned or not ranked:
        return []
    rows = ranker_features([r.candidate for r in ranked], fusion.k)
    return [sum(w * x for w, x in zip(fusion.learned, row, strict=True)) for row in rows]


def with_shares(ranked: Sequence[Ranked], fusion: Fusion) -> list[Ranked]:
    """The passages in the learned order, each with its `share`: the learned ranker was
    fitted as a softmax over a question's candidates, so exp(score) normalised over the
    returned passages is its estimate of which one the customer asks about. Two close
    shares mean the evidence does not tell two sections apart (the offline responder
    then quotes both); without a learned ranker the shares stay 0 (unknown)."""
    return _shared(_learned_order(ranked, fusion), fusion)


def _shared(scored: Sequence[tuple[Ranked, float]], fusion: Fusion) -> list[Ranked]:
    """The softmax of the given learned scores over these passages, in this order. The
    scores must come from the list the passages were ordered in: scored again among the
    returned few only, the ranks inside the lists change, and a passage ordered second
    could get the larger share (which then misleads the close-second decision)."""
    if not fusion.learned or not scored:
        return [r for r, _ in scored]
    top = max(s for _, s in scored)
    weights = [math.exp(s - top) for _, s in scored]
    total = sum(weights)
    return [
        msgspec.structs.replace(r, share=round(w / total, 6))
        for (r, _), w in zip(scored, weights, strict=True)
    ]


def _ranks(
    candidates: Sequence[Candidate], key: Callable[[Candidate], float]
) -> dict[str, int | None]:
    """1-based rank by `key` among candidates that have any vector evidence."""
    present = [c for c in candidates if c.sentence_similarity or c.title_similarity]
    ordered = sorted(present, key=lambda c: (-key(c), c.id))
    ranks: dict[str, int | None] = {c.id: None for c in candidates}
    ranks.update({c.id: i for i, c in enumerate(ordered, start=1)})
    return ranks


def features(ranked: Sequence[Ranked]) -> tuple[float, ...]:
    """FEATURES of the top candidate (all zero when there is none)."""
    if not ranked:
        return (0.0,) * len(FEATURES)
    top = ranked[0]
    other = next((r for r in ranked[1:] if r.candidate.section != top.candidate.section), None)
    margin = top.fused - (other.fused if other else 0.0)
    c = top.candidate
    return (
        c.coverage,
        c.similarity,
        c.sentence_similarity,
        top.fused,
        margin,
        c.unknown,
        c.alias_similarity,
    )


def select(ranked: Sequence[Ranked], calibration: Calibration, limit: int) -> list[Ranked]:
    """The passages to return: none when the fused list's top does not answer, else, in
    the learned order, the best one and those whose fused score is close to its, each
    with its share of the ranker's probability (`with_shares`), from the scores that
    ordered them (among every candidate)."""
    if not ranked or limit <= 0:
        return []
    if calibration.no_match.probability(features(ranked)) < calibration.no_match.cut:
        return []
    ordered = _learned_order(ranked, calibration.fusion)
    floor = ordered[0][0].fused * calibration.keep_ratio
    kept = [(r, s) for r, s in ordered if r.fused >= floor][:limit]
    return _shared(kept, calibration.fusion)
