"""`fte kb calibrate`'s grid search in numpy agrees with rank() on generated samples."""

from __future__ import annotations

import random

import msgspec

from fte_core.ranking import RANKER_FEATURES, Candidate, Fusion
from service.calibration import Sample, best_fusion, fit_ranker, recall_at_1


def _sample(rng: random.Random, n: int) -> Sample:
    candidates = []
    for i in range(rng.randint(1, 8)):
        candidates.append(
            Candidate(
                id=f"d/s{i}/0",
                document="d",
                section=f"s{i}",
                text="t",
                lexical_rank=rng.choice([None, 1, 2, 3, 4]),
                vector_rank=rng.choice([None, 1, 2, 3]),
                sentence_similarity=round(rng.random(), 2),
                title_similarity=round(rng.random(), 2),
                alias_similarity=rng.choice([0.0, round(rng.random(), 2)]),
            )
        )
    wanted = (f"s{rng.randrange(8)}",) if n % 5 else ()
    return Sample(candidates=tuple(candidates), wanted=wanted)


def test_the_best_fusion_scores_what_rank_scores() -> None:
    rng = random.Random(7)
    samples = [_sample(rng, n) for n in range(120)]
    fusion, recall = best_fusion(samples)
    assert recall == recall_at_1(samples, fusion)
    assert recall >= recall_at_1(samples, Fusion())


def _aliased(rng: random.Random, n: int) -> Sample:
    """Lists that rank a random candidate first; only the alias cosine knows the answer."""
    right = rng.randrange(5)
    candidates = tuple(
        Candidate(
            id=f"d/s{i}/0",
            document="d",
            section=f"s{i}",
            text="t",
            lexical_rank=rng.randint(1, 5),
            vector_rank=rng.randint(1, 5),
            sentence_similarity=round(rng.random(), 2),
            title_similarity=round(rng.random(), 2),
            alias_similarity=0.9 if i == right else round(rng.random() * 0.5, 2),
        )
        for i in range(5)
    )
    return Sample(candidates=candidates, wanted=(f"s{right}",))


def test_the_ranker_learns_the_evidence_that_tells_sections_apart() -> None:
    rng = random.Random(11)
    samples = [_aliased(rng, n) for n in range(80)]
    fusion, fused_recall = best_fusion(samples)
    learned = fit_ranker(samples, fusion.k)
    assert len(learned) == len(RANKER_FEATURES)
    weights = dict(zip(RANKER_FEATURES, learned, strict=True))
    assert weights["alias_similarity"] > 0
    assert weights["alias_rr"] > 0
    with_ranker = msgspec.structs.replace(fusion, learned=learned)
    assert recall_at_1(samples, with_ranker) == 1.0 > fused_recall


def test_no_answerable_sample_leaves_the_ranker_out() -> None:
    assert fit_ranker([Sample(candidates=(), wanted=())], 20) == ()
