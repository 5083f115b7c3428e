"""Fusion of the candidate lists, the calibrated no-match decision, and grounding."""

from __future__ import annotations

import math

import msgspec
import pytest

from fte_core.errors import ValidationError
from fte_core.grounding import grounded, own_words
from fte_core.models import Passage
from fte_core.ports import Answer
from fte_core.ranking import (
    GENERIC,
    HASHING,
    MINILM,
    RANKER_FEATURES,
    Candidate,
    Fusion,
    NoMatchModel,
    calibration_for,
    features,
    rank,
    reorder,
    select,
    with_cut,
    with_shares,
)


def cand(cid: str, **evidence: float | int | None) -> Candidate:
    section = cid.split("/")[1]
    return Candidate(id=cid, document="d", section=section, text="t", **evidence)  # type: ignore[arg-type]


def test_first_in_every_list_scores_one_and_ranks_first() -> None:
    fusion = Fusion(k=20)
    ranked = rank(
        [
            cand("d/b/0", lexical_rank=2, vector_rank=2, sentence_similarity=0.4),
            cand(
                "d/a/0",
                lexical_rank=1,
                vector_rank=1,
                sentence_similarity=0.8,
                title_similarity=0.9,
            ),
        ],
        fusion,
    )
    assert [r.candidate.id for r in ranked] == ["d/a/0", "d/b/0"]
    assert ranked[0].fused == pytest.approx(1.0)
    assert 0 < ranked[1].fused < 1


def test_the_sentence_list_can_outvote_the_full_text_list() -> None:
    """A casual question shares few words with the right article but is close to one of
    its sentences: with the sentence list weighted double, the sentence wins."""
    fusion = Fusion(k=20, lexical=0.5, vector=0.5, sentence=1.0, title=0.5)
    ranked = rank(
        [
            cand("d/words/0", lexical_rank=1, vector_rank=2, sentence_similarity=0.3),
            cand(
                "d/meaning/0",
                lexical_rank=3,
                vector_rank=1,
                sentence_similarity=0.7,
                title_similarity=0.6,
            ),
        ],
        fusion,
    )
    assert ranked[0].candidate.id == "d/meaning/0"


def test_the_alias_list_tells_neighbouring_sections_apart() -> None:
    """Two sections the words and vectors cannot separate: the one a customer's phrasing
    is listed for ("kick someone out") wins when aliases carry weight, not without."""
    pair = [
        cand("d/transfer/0", lexical_rank=1, vector_rank=1, sentence_similarity=0.5),
        cand(
            "d/remove/0",
            lexical_rank=2,
            vector_rank=2,
            sentence_similarity=0.49,
            alias_similarity=0.8,
        ),
    ]
    assert rank(pair, Fusion(k=20))[0].candidate.id == "d/transfer/0"
    assert rank(pair, Fusion(k=20, alias=2.0))[0].candidate.id == "d/remove/0"


# the learned ranker weighing only the alias cosine (index 8 of RANKER_FEATURES)
ALIAS_ONLY = tuple(1.0 if name == "alias_similarity" else 0.0 for name in RANKER_FEATURES)


def test_the_learned_ranker_reorders_only_the_final_choice() -> None:
    """The fused order (which the no-match decision reads) stays; `reorder` puts the
    candidate the learned weights prefer first, and `select` returns that order."""
    fusion = Fusion(k=20, learned=ALIAS_ONLY)
    candidates = [
        cand("d/a/0", lexical_rank=1, vector_rank=1, sentence_similarity=0.9, alias_similarity=0.2),
        cand("d/b/0", lexical_rank=2, vector_rank=2, sentence_similarity=0.8, alias_similarity=0.9),
    ]
    ranked = rank(candidates, fusion)
    assert [r.candidate.id for r in ranked] == ["d/a/0", "d/b/0"]
    assert [r.candidate.id for r in reorder(ranked, fusion)] == ["d/b/0", "d/a/0"]
    plain = msgspec.structs.replace(fusion, learned=())
    assert reorder(ranked, plain) == ranked
    calibration = with_cut(msgspec.structs.replace(MINILM, fusion=fusion), 0.0)
    assert [r.candidate.id for r in select(ranked, calibration, 5)] == ["d/b/0", "d/a/0"]


def test_shares_are_the_learned_rankers_softmax_over_the_returned_passages() -> None:
    fusion = Fusion(k=20, learned=ALIAS_ONLY)
    ranked = rank(
        [
            cand("d/a/0", lexical_rank=1, sentence_similarity=0.9, alias_similarity=0.9),
            cand("d/b/0", lexical_rank=2, sentence_similarity=0.8, alias_similarity=0.4),
        ],
        fusion,
    )
    shares = [r.share for r in with_shares(ranked, fusion)]
    assert sum(shares) == pytest.approx(1.0)
    assert shares[1] / shares[0] == pytest.approx(math.exp(0.4 - 0.9), rel=1e-4)
    calibration = with_cut(msgspec.structs.replace(MINILM, fusion=fusion), 0.0)
    assert [r.share for r in select(ranked, calibration, 5)] == shares


def test_without_a_learned_ranker_shares_are_unknown() -> None:
    ranked = rank([cand("d/a/0", lexical_rank=1, sentence_similarity=0.9)], HASHING.fusion)
    assert [r.share for r in with_shares(ranked, HASHING.fusion)] == [0.0]


def test_learned_weights_must_match_the_ranker_features() -> None:
    with pytest.raises(ValidationError, match="learned"):
        Fusion(learned=(1.0, 2.0))


def test_every_calibration_scores_the_features_it_is_given() -> None:
    ranked = rank([cand("d/a/0", lexical_rank=1, sentence_similarity=0.5)], Fusion())
    for calibration in (MINILM, HASHING, GENERIC):
        assert 0.0 <= calibration.no_match.probability(features(ranked)) <= 1.0


def test_margin_is_measured_to_another_section() -> None:
    ranked = rank(
        [
            cand("d/a/0", lexical_rank=1, vector_rank=1, sentence_similarity=0.9),
            cand("d/a/1", lexical_rank=2, vector_rank=2, sentence_similarity=0.8),
            cand("d/b/0", lexical_rank=3, vector_rank=3, sentence_similarity=0.1),
        ],
        Fusion(),
    )
    margin = features(ranked)[4]
    assert margin == pytest.approx(ranked[0].fused - ranked[2].fused)


def test_select_returns_nothing_below_the_cut_and_close_passages_above_it() -> None:
    top = cand(
        "d/a/0",
        lexical_rank=1,
        vector_rank=1,
        sentence_similarity=0.9,
        title_similarity=0.9,
        coverage=0.9,
        similarity=0.8,
    )
    others = [
        cand(
            f"d/o{i}/0",
            lexical_rank=i + 2,
            vector_rank=i + 2,
            sentence_similarity=0.5 - i / 100,
            title_similarity=0.5 - i / 100,
        )
        for i in range(30)
    ]
    ranked = rank([top, *others], MINILM.fusion)
    chosen = [r.candidate.id for r in select(ranked, MINILM, 5)]
    assert chosen[0] == "d/a/0"
    assert "d/o29/0" not in chosen  # far below the top one
    assert select(ranked, with_cut(MINILM, 1.0), 5) == []
    assert select([], MINILM, 5) == []


def test_unknown_words_lower_the_probability_of_an_answer() -> None:
    model = MINILM.no_match
    known = model.probability((0.3, 0.5, 0.55, 0.95, 0.05, 0.0, 0.5))
    unknown = model.probability((0.3, 0.5, 0.55, 0.95, 0.05, 0.8, 0.5))
    assert unknown < known


def test_each_embedder_gets_its_own_calibration() -> None:
    assert calibration_for("all-minilm-l6-v2-int8-onnx1") is MINILM
    assert calibration_for("hashing2-384") is HASHING
    assert calibration_for("openai/text-embedding-3-small") is GENERIC
    assert NoMatchModel(weights=(0.0,), bias=0.0).probability((5.0,)) == 0.5


PASSAGE = Passage(
    id="docs/reset/0",
    document="docs",
    section="Resetting your password",
    text="Click Forgot password? on the sign-in page. The reset link expires after 60 minutes.",
)


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        (
            'From our help article "Resetting your password": The reset link expires after '
            "60 minutes.",
            True,
        ),
        ("Click Forgot password on the sign-in page and our team will follow up.", True),
        ("The reset link expires after 24 hours.", False),  # a number the passage lacks
        ("You can export your whole workspace as a PDF from the admin console.", False),
    ],
)
def test_grounded_checks_each_sentence_against_the_cited_passages(text: str, ok: bool) -> None:
    answer = Answer(text=text, passage_ids=(PASSAGE.id,), responder="m")
    assert grounded(answer, [PASSAGE]) is ok


def test_an_answer_citing_nothing_offered_is_ungrounded() -> None:
    assert not grounded(
        Answer(text="Click Forgot password.", passage_ids=(), responder="m"), [PASSAGE]
    )
    assert not grounded(
        Answer(text="Click Forgot password.", passage_ids=("other/x/0",), responder="m"),
        [PASSAGE],
    )


def test_own_words_are_what_the_draft_did_not_quote_from_its_cited_passages() -> None:
    text = (
        'Here is what our help article "Resetting your password" says:\n\nThe reset link '
        "expires after 60 minutes. We will also refund your last invoice."
    )
    cited = Answer(text=text, passage_ids=(PASSAGE.id,), responder="m")
    assert own_words(cited, [PASSAGE]) == (
        'Here is what our help article "Resetting your password" says: '
        "We will also refund your last invoice."
    )
    # a passage the draft does not cite lends it nothing
    uncited = Answer(text=text, passage_ids=(), responder="m")
    assert "The reset link expires" in own_words(uncited, [PASSAGE])
    quoted = Answer(
        text="The reset link expires after 60 minutes.", passage_ids=(PASSAGE.id,), responder="m"
    )
    assert own_words(quoted, [PASSAGE]) == ""
