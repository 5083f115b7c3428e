"""The mood score reads disguised words as the phrase rules do, and only ever lowers."""

from __future__ import annotations

import pytest

from fte_core.models import Channel
from fte_core.policy.engine import features
from fte_core.sentiment import sentiment_score, undisguised

ANGRY = 0.35  # sentiment.yaml: below it, an anger word escalates


@pytest.mark.parametrize(
    ("disguised", "plain"),
    [
        ("u s e l e s s app", "useless app"),
        ("w-o-r-s-t service ever", "worst service ever"),
        ("you are p4th3tic", "you are pathetic"),
        ("ｕｓｅｌｅｓｓ ｃｏｍｐａｎｙ", "useless company"),
        ("terribleeee app", "terrible app"),
        ("a h0rr!ble app", "a horrible app"),
    ],
)
def test_a_disguised_insult_scores_like_the_plain_one(disguised: str, plain: str) -> None:
    assert sentiment_score(plain) < ANGRY
    assert sentiment_score(disguised) == sentiment_score(plain)


def test_words_inside_a_joined_run_are_read_apart() -> None:
    # the normaliser collapses the wider gap between spaced words: "ihate" is read "i hate"
    assert undisguised("i h a t e  it") == "i hate it"
    assert sentiment_score("i h a t e  it") == sentiment_score("i hate it")


@pytest.mark.parametrize(
    "text",
    ["How do I archive a board?", "thx!! 🙏 how do i add a checklist", "I LOVE the new view"],
)
def test_a_message_with_nothing_disguised_is_read_once(text: str) -> None:
    assert undisguised(text) is None


@pytest.mark.parametrize(
    "text",
    [
        "h0w d0 i arch1ve a b0ard",
        "Ｈｏｗ ｄｏ Ｉ ｃｈａｎｇｅ ｍｙ ａｖａｔａｒ？",
        "p l s help me add a due date",
    ],
)
def test_a_disguised_how_to_stays_calm(text: str) -> None:
    assert sentiment_score(text) >= 0.5


def test_the_written_mood_is_kept_when_the_reading_is_milder() -> None:
    # capitals stress a word for the lexicon; the lower-cased reading must not soften it
    text = "this is TERRIBLE, y0u know"
    assert sentiment_score(text) == sentiment_score("this is TERRIBLE, you know")


def test_the_engine_scores_the_disguised_reading() -> None:
    assert features("w.o.r.s.t support ever", Channel.WHATSAPP).sentiment < ANGRY


@pytest.mark.parametrize(
    "text",
    [
        "How do I archive a board?",
        "this is TERRIBLE, y0u know",
        "u s e l e s s app",
        "uѕeleѕѕ app",  # Cyrillic look-alikes, folded by normalisation, no other view
        "ｕｓｅｌｅｓｓ ｃｏｍｐａｎｙ",
        "the “new” view is awful",
        "a h0rr!ble app",
        "I LOVE the new view",
    ],
)
def test_the_engine_skips_the_second_reading_only_when_it_would_change_nothing(
    text: str,
) -> None:
    # features() tells sentiment_score whether any view undid a disguise; the score is
    # the same as reading every message twice
    assert features(text, Channel.WEB_FORM).sentiment == sentiment_score(text)
