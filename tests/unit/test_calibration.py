"""`fte kb calibrate`'s grid search in numpy agrees with rank() on generated samples."""

from __future__ import annotations

import random

from fte_core.ranking import Candidate, Fusion
from service.calibration import Sample, best_fusion, recall_at_1


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
