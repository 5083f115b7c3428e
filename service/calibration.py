"""`fte kb calibrate`: fit the fusion weights and the no-match model for an embedder.

From labelled tickets (the sample-ticket format: answerable questions with their section,
off-topic ones expected `escalate/no_kb_match`), every question's candidates are read
once from the knowledge base; then, in memory:

1. fusion: the weights and k of fte_core.ranking.Fusion maximising recall@1 over a small
   grid (ties: the earlier, plainer grid point);
2. ranker: a linear model over each candidate's reciprocal ranks (with that k) and raw
   evidence (fte_core.ranking.RANKER_FEATURES), fitted as a softmax over the question's
   candidates (the right section's candidates share the target; L2 `RANKER_L2`). Fitted
   on some labelled sets and scored on others, it beats the grid-fitted fusion on the
   held-back ones (recall@1 0.930 vs 0.886 on 158 new tuning questions, 0.948 vs 0.933
   the other way round): the fusion weighs ranks only, the ranker also how close a
   sentence or an alias really is. The calibration ships it in `Fusion.learned`; it
   only orders the passages of a question found answerable;
3. no-match: a logistic regression over fte_core.ranking.FEATURES of the top candidate
   (answerable = 1, off-topic = 0, classes weighted equally, light L2), and the
   probability cut that keeps the false hand-over of answerable questions at or under
   `max_false_escalation` on the data (a wrong hand-over is cheap, a confident wrong
   answer is not, but answering is the job).

Prints the Calibration as JSON: paste it into fte_core.ranking for a shipped embedder.
Never fit on the held-out set you report.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import msgspec

from adapters.storage.postgres.knowledge import PostgresKnowledgeBase
from fte_core.chunking import slugify
from fte_core.ranking import (
    RANKER_FEATURES,
    Calibration,
    Candidate,
    Fusion,
    NoMatchModel,
    features,
    positions,
    rank,
    ranker_features,
    reorder,
)
from fte_core.retrieval import split_questions
from service.evaluation import SampleTicket

_K = (20, 60)
_WEIGHTS = (0.5, 1.0, 2.0)
_ALIAS_WEIGHTS = (0.0, 0.5, 1.0, 2.0)
RANKER_L2 = 0.1
_RANKER_STEPS = 3000


class Sample(msgspec.Struct, frozen=True, kw_only=True):
    candidates: tuple[Candidate, ...]
    wanted: tuple[str, ...]  # section slugs; empty: off-topic


async def collect(kb: PostgresKnowledgeBase, tickets: Sequence[SampleTicket]) -> list[Sample]:
    samples = []
    for ticket in tickets:
        exp = ticket.expected
        if exp.action == "escalate" and exp.reason != "no_kb_match":
            continue
        wanted = tuple(slugify(w) for w in exp.wanted()) if exp.action == "answer" else ()
        for question in split_questions(ticket.text, ticket.subject):
            ranked = await kb.evidence(question)
            samples.append(Sample(candidates=tuple(r.candidate for r in ranked), wanted=wanted))
    return samples


def recall_at_1(samples: Sequence[Sample], fusion: Fusion) -> float:
    answerable = [s for s in samples if s.wanted]
    hits = 0
    for s in answerable:
        ranked = reorder(rank(s.candidates, fusion), fusion)
        hits += bool(ranked) and _slug(ranked[0].candidate.id) in s.wanted
    return hits / max(1, len(answerable))


def _slug(chunk_id: str) -> str:
    parts = chunk_id.split("/")
    return parts[1] if len(parts) >= 3 else chunk_id


def best_fusion(samples: Sequence[Sample]) -> tuple[Fusion, float]:
    """The grid searched in numpy: a candidate's fused score is its list positions'
    reciprocal ranks times the weights, so each k needs one matrix of them; candidates are
    pre-sorted by rank()'s tie-break, so the first maximum is rank()'s first."""
    import numpy as np

    answerable = [s for s in samples if s.wanted and s.candidates]
    if not answerable:
        return Fusion(), 0.0
    width = max(len(s.candidates) for s in answerable)
    places = np.zeros((len(answerable), width, 5))
    present = np.zeros((len(answerable), width), dtype=bool)
    right = np.zeros((len(answerable), width), dtype=bool)
    for i, s in enumerate(answerable):
        order = sorted(
            zip(s.candidates, positions(s.candidates), strict=True),
            key=lambda pair: (-pair[0].sentence_similarity, pair[0].id),
        )
        for j, (candidate, where) in enumerate(order):
            places[i, j] = [p or 0 for p in where]
            present[i, j] = True
            right[i, j] = _slug(candidate.id) in s.wanted
    total = max(1, sum(1 for s in samples if s.wanted))  # those with no candidate are misses
    best, best_recall = Fusion(), -1.0
    for k in _K:
        reciprocal = np.where(places > 0, 1.0 / (k + places), 0.0)
        for lexical, vector, sentence, title, alias in itertools.product(
            _WEIGHTS, _WEIGHTS, _WEIGHTS, _WEIGHTS, _ALIAS_WEIGHTS
        ):
            weights = np.array([lexical, vector, sentence, title, alias])
            fused = np.round((reciprocal @ weights) / (weights.sum() / (k + 1)), 9)
            top = np.where(present, fused, -1.0).argmax(axis=1)
            recall = float(right[np.arange(len(answerable)), top].sum()) / total
            if recall > best_recall + 1e-9:
                best_recall = recall
                best = Fusion(
                    k=k, lexical=lexical, vector=vector, sentence=sentence, title=title, alias=alias
                )
    return best, best_recall


def fit_ranker(samples: Sequence[Sample], k: int) -> tuple[float, ...]:
    """RANKER_FEATURES weights maximising the softmax likelihood of the right section's
    candidates, by full-batch gradient descent on standardised features (the scale is
    folded back into the weights; a shift changes no softmax, so there is no bias)."""
    import numpy as np

    usable = [s for s in samples if s.wanted and any(_slug(c.id) in s.wanted for c in s.candidates)]
    if not usable:
        return ()
    width = max(len(s.candidates) for s in usable)
    x = np.zeros((len(usable), width, len(RANKER_FEATURES)))
    present = np.zeros((len(usable), width), dtype=bool)
    target = np.zeros((len(usable), width))
    for i, s in enumerate(usable):
        n = len(s.candidates)
        x[i, :n] = ranker_features(s.candidates, k)
        present[i, :n] = True
        target[i, :n] = [_slug(c.id) in s.wanted for c in s.candidates]
    target /= target.sum(axis=1, keepdims=True)
    mean, scale = x[present].mean(axis=0), x[present].std(axis=0) + 1e-9
    z = np.where(present[..., None], (x - mean) / scale, 0.0)
    w = np.zeros(len(RANKER_FEATURES))
    for _ in range(_RANKER_STEPS):
        scores = np.where(present, z @ w, -np.inf)
        p = np.exp(scores - scores.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        w -= 0.5 * (np.einsum("nc,ncd->d", p - target, z) / len(usable) + RANKER_L2 * w)
    return tuple(round(float(v), 4) for v in w / scale)


def fit_no_match(
    samples: Sequence[Sample], fusion: Fusion, max_false_escalation: float
) -> NoMatchModel:
    import numpy as np

    rows = [features(rank(s.candidates, fusion)) for s in samples]
    x = np.array(rows, dtype=float)
    y = np.array([1.0 if s.wanted else 0.0 for s in samples])
    positives = max(1.0, float(y.sum()))
    negatives = max(1.0, float(len(y) - y.sum()))
    weight = np.where(y == 1, 0.5 / positives, 0.5 / negatives)
    w = np.zeros(x.shape[1])
    b = 0.0
    for _ in range(20_000):  # plain gradient descent: 7 features, a few hundred rows
        p = 1 / (1 + np.exp(-(x @ w + b)))
        error = (p - y) * weight
        w -= 2.0 * (x.T @ error + 1e-3 * w)
        b -= 2.0 * float(error.sum())
    p = 1 / (1 + np.exp(-(x @ w + b)))
    answerable = np.sort(p[y == 1])
    allowed = int(np.floor(max_false_escalation * len(answerable)))
    cut = float(answerable[allowed]) - 1e-6 if len(answerable) else 0.5
    return NoMatchModel(
        weights=tuple(round(float(v), 4) for v in w), bias=round(b, 4), cut=round(cut, 4)
    )


def calibrate(
    samples: Sequence[Sample], embedder: str, max_false_escalation: float = 0.03
) -> tuple[Calibration, dict[str, float]]:
    grid, grid_recall = best_fusion(samples)
    fusion = msgspec.structs.replace(grid, learned=fit_ranker(samples, grid.k))
    recall = recall_at_1(samples, fusion)
    model = fit_no_match(samples, fusion, max_false_escalation)
    probabilities = [
        (model.probability(features(rank(s.candidates, fusion))), bool(s.wanted)) for s in samples
    ]
    answerable = [p for p, a in probabilities if a]
    off_topic = [p for p, a in probabilities if not a]
    stats = {
        "recall_at_1": recall,
        "recall_at_1_fusion_only": grid_recall,
        "answerable": len(answerable),
        "off_topic": len(off_topic),
        "false_escalation": sum(p < model.cut for p in answerable) / max(1, len(answerable)),
        "off_topic_recall": sum(p < model.cut for p in off_topic) / max(1, len(off_topic)),
    }
    name = embedder.rsplit("-onnx", 1)[0]
    return Calibration(embedder=name, fusion=fusion, no_match=model), stats
