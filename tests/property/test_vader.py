"""The fast analyzer (fte_core.vader) scores every message exactly as vaderSentiment does."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st
from vaderSentiment import vaderSentiment as vs  # noqa: N813 - the module is named so

from fte_core.vader import FastAnalyzer
from tests import strategies as s

ORIGINAL = vs.SentimentIntensityAnalyzer()
FAST = FastAnalyzer()

# The words vaderSentiment treats specially, so that its negation, booster, idiom, "but",
# "least" and "kind of" branches are all reached, among lexicon and plain words.
SPECIAL = sorted(
    {
        *vs.NEGATE,
        *(w for k in (*vs.BOOSTER_DICT, *vs.SPECIAL_CASES) for w in k.split()),
        "but",
        "least",
        "at",
        "very",
        "never",
        "so",
        "this",
        "without",
        "doubt",
        "no",
        "or",
        "nor",
        "kind",
        "of",
        "don't",
        "NOT",
        "GREAT",
    }
)
LEXICON = sorted(ORIGINAL.lexicon)[::7]
PLAIN = ["the", "app", "invoice", "team", "please", "export", "it", "is", "my", "account"]
EMOJI = ["😡", "🙏", "😀", "👍", ":)", ":(", "!", "?", "!!", "??"]

word = st.one_of(
    st.sampled_from(SPECIAL),
    st.sampled_from(PLAIN),
    st.sampled_from(EMOJI),
)
scored = st.one_of(st.sampled_from(LEXICON), st.sampled_from(LEXICON).map(str.upper))
# a lexicon word after up to three modifiers: the window vaderSentiment inspects
segment = st.tuples(st.lists(word, max_size=3), scored).map(lambda p: [*p[0], p[1]])


@settings(max_examples=800, deadline=None)
@given(st.lists(segment, max_size=8), st.sampled_from(["", ".", "!", " ", "\n", ","]))
def test_same_scores_as_vadersentiment(segments: list[list[str]], glue: str) -> None:
    words = [w for seg in segments for w in seg]
    text = (glue + " ").join(words) if glue.strip() else " ".join(words)
    assert FAST.polarity_scores(text) == ORIGINAL.polarity_scores(text)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_same_scores_on_any_text(text: str) -> None:
    assert FAST.polarity_scores(text) == ORIGINAL.polarity_scores(text)


def test_same_scores_on_support_messages() -> None:
    rng = random.Random(7)
    pool = [*s.FORMAL_SENTENCES, *s.WEB_SENTENCES, *s.WHATSAPP_BITS]
    for _ in range(500):
        text = " ".join(rng.sample(pool, 4))
        assert FAST.polarity_scores(text) == ORIGINAL.polarity_scores(text)


# each reaches one branch the generated messages meet rarely
EDGE_CASES = (
    "without doubt it is good",
    "it was without doubt the worst",
    "without a doubt amazing",
    "it is sort of good",
    "the export is kind of bad and sort of slow",
    "i kind of love it",
    "we got the bomb",
    "yeah right great app",
    "never so happy",
    "never this bad",
    "it is not at least good",
    "at least good",
    "very least bad",
    "no problem at all",
    "no good or bad",
    "not bad but not great either",
    "the shit is the bomb but bad ass and to die for",
    "GREAT app but TERRIBLY slow",
    "I don't hate it, I can't love it",
)


def test_same_scores_on_each_branch() -> None:
    for text in EDGE_CASES:
        assert FAST.polarity_scores(text) == ORIGINAL.polarity_scores(text), text
