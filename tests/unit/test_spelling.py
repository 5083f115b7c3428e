"""Typos mended against the documentation's words (fte_core.spelling)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fte_core.spelling import MIN_LENGTH, Speller, one_slip, speller

DOCS = """## Changing the language of the app
To change it, go to Settings > Profile > Language, pick French or German and click Save.
## Planning with the timeline view
Open a project and click the Timeline tab. Cover the table with a tablet.
## Webhooks
Every webhook delivery carries a signature; failing deliveries are retried.
"""


@pytest.mark.parametrize(
    ("typed", "mended"),
    [
        ("chnage langauge fench", "change language french"),  # swaps, a letter left out
        ("timline", "timeline"),
        ("webhok deliverey", "webhook delivery"),  # a letter left out, one too many
        ("fnd the timline", "fnd the timeline"),  # too short to guess
    ],
)
def test_a_slip_of_the_fingers_is_mended(typed: str, mended: str) -> None:
    assert Speller(DOCS).mend(typed) == mended


@pytest.mark.parametrize(
    "real",
    [
        "mailing list",  # one wrong letter from "failing": a real word, not a slip
        "table",  # known as it is
        "tablets",  # only an ending more than "tablet"
        "over",  # "cover" minus its first letter, and too short anyway
        "sourdough notion",  # nothing close
    ],
)
def test_real_words_the_docs_lack_are_left_alone(real: str) -> None:
    assert Speller(DOCS).mend(real) == real


def test_the_most_frequent_of_equally_close_words_wins() -> None:
    # "tabel" is a swap from "table" and from nothing else; "tablee" one letter more
    # than "table" at the end is an ending, not a slip
    assert Speller("table table tabla").mend("tabel tablee") == "table tablee"


def test_one_slip() -> None:
    assert one_slip("recieve", "receive")
    assert one_slip("acount", "account")
    assert one_slip("accoount", "account")
    assert not one_slip("discard", "discord")  # a wrong letter
    assert not one_slip("account", "account")  # no slip at all
    assert one_slip("acconut", "account")  # neighbours swapped
    assert not one_slip("accnuot", "account")  # two letters apart exchanged


def test_one_speller_per_documentation_text() -> None:
    assert speller(DOCS) is speller(DOCS)
    assert speller("").mend("chnage") == "chnage"


def _scan(known: Speller, word: str) -> str:
    """The vocabulary scanned word by word: what the speller's lookup must agree with."""
    if len(word) < MIN_LENGTH or word in known.counts:
        return word
    close = [w for w in known.counts if one_slip(word, w)]
    return min(close, key=lambda w: (-known.counts[w], w), default=word)


_VOCABULARY = Speller(DOCS + " accounts account acount recieve receive receive deliveries")


@given(
    st.sampled_from(sorted(_VOCABULARY.counts)),
    st.integers(min_value=0, max_value=20),
    st.sampled_from(["drop", "add", "swap", "none"]),
    st.sampled_from("abcdefghijklmnopqrstuvwxyz"),
)
def test_looking_up_a_words_slips_finds_what_scanning_the_vocabulary_finds(
    word: str, at: int, slip: str, letter: str
) -> None:
    i = at % (len(word) + 1)
    typed = {
        "drop": word[:i] + word[i + 1 :],
        "add": word[:i] + letter + word[i:],
        "swap": word[:i] + word[i + 1 : i + 2] + word[i : i + 1] + word[i + 2 :],
        "none": word,
    }[slip]
    assert _VOCABULARY.mend(typed) == _scan(_VOCABULARY, typed)
    assert _VOCABULARY.mend(typed) == _VOCABULARY.mend(typed)  # remembered: the same


def test_a_word_longer_than_any_known_is_left_alone_at_once() -> None:
    """A made-up word of a thousand letters (anyone can send one) is one slip from no
    known word: it is not edited letter by letter."""
    long = "x" * 1000
    assert Speller(DOCS).mend(f"chnage {long}") == f"change {long}"
