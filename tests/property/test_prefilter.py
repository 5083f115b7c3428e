"""The literal prefilter and the phrase automaton never change an atom's answer.

The automaton (`TextMatcher`) is held equal, on the written view, to the regex each
phrase list used to be (`fte_core.text.phrases_regex`) searched on the text with
separators read as one space; patterns to a plain `re.search`.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fte_core.policy.loader import load_rules
from fte_core.policy.matcher import AtomSource, canonical_text
from fte_core.policy.prefilter import DIGIT, WORD_START, Prefilter, all_required, required_literals
from fte_core.text import normalize, phrases_regex
from fte_core.textviews import View

ROOT = Path(__file__).resolve().parents[2]
RULES = load_rules(ROOT / "rules")
STAGES = (RULES.input, RULES.output)
# Fragments of every shipped pattern and phrase, so random texts hit the atoms often.
FRAGMENTS = sorted(
    {
        word
        for stage in STAGES
        for atom in stage.atoms
        for source in (*atom.phrases, *atom.patterns)
        for word in re.findall(r"[a-z0-9$€£%']{2,}", normalize(source))
    }
)


def _plain(atom: AtomSource, text: str) -> bool:
    """The atom as plain regex searches: what the automaton must reproduce."""
    phrases = [canonical_text(p) for p in atom.phrases]
    if phrases and re.search(phrases_regex(phrases), canonical_text(text)):
        return True
    return any(re.search(p, text) for p in atom.patterns)


texts = st.lists(
    st.one_of(
        st.sampled_from(FRAGMENTS),
        st.sampled_from([" ", "  ", "-", "_", ".", ",", "!", "?", "\n", "$", "€", "5", "49.99"]),
        st.text(max_size=4),
    ),
    max_size=30,
).map(lambda parts: normalize("".join(parts)))


@settings(max_examples=800, deadline=None)
@given(texts)
def test_matched_atoms_equal_plain_search(text: str) -> None:
    for stage in STAGES:
        found = stage.matcher.match((View("written", text),))
        for atom, view in zip(stage.atoms, found, strict=True):
            if not atom.exceptions:  # exceptions: tests/unit/test_matcher.py
                assert (view == "written") == _plain(atom, text), (atom, text)


@pytest.mark.parametrize(
    ("pattern", "needles"),
    [
        (r"(?<!\w)(?:refund\w*|money[\s_\-]+back)(?!\w)", {"\x01refund", "\x01money"}),
        (r"\bsue (you|me)", {"\x01sue "}),
        (r"x[\s_]+back\b", {"\x01back"}),  # after a separator run: a word start
        (r"[$€£]\s?\d", {"$", "€", "£"}),  # any literal beats a digit (digits are everywhere)
        (r"\d\d?\d", {DIGIT}),  # nothing better than a digit
        (r"[$€£]\s?[0-4]", {"$", "€", "£"}),
        (r"\d+\s?(usd|eur)", {"usd", "eur"}),
        (r"(ab|cd)?x", {"x"}),
    ],
)
def test_required_literals(pattern: str, needles: set[str]) -> None:
    assert WORD_START == "\x01"
    assert required_literals(re.compile(pattern)) == frozenset(needles)


@pytest.mark.parametrize(
    ("pattern", "text"),
    [
        (r"(?<!\w)refund", "prefund refund"),
        (r"(?<!\w)refund", "x_refund"),
        (r"\bsue you", "pursue you, sue you"),
        (r"a[\s_]+back", "a_back"),
    ],
)
def test_word_start_needles_keep_real_matches(pattern: str, text: str) -> None:
    compiled = re.compile(pattern)
    assert Prefilter([compiled]).atoms(text) == (compiled.search(text) is not None,)


@pytest.mark.parametrize("pattern", [r"(?i)refund", r"(ab)?", r"[^a]c?", r"\w+", r"a|b?"])
def test_patterns_without_a_safe_requirement_always_run(pattern: str) -> None:
    compiled = re.compile(pattern)
    assert required_literals(compiled) is None
    for text in ("", "ZZ", "REFUND", "ab", "b"):
        assert Prefilter([compiled]).atoms(text) == (compiled.search(text) is not None,)


def test_every_required_literal_set_must_occur() -> None:
    """A regex needing a digit, a percent and "the" does not run on a text with "the" only."""
    pattern = re.compile(r"\b\d{1,3}\s?(%|percent) (of |off )?(the|your) price")
    assert set(all_required(pattern)) == {
        frozenset({DIGIT}),
        frozenset({"%", "percent"}),
        frozenset({"the", "your"}),
        frozenset({" price"}),
    }
    prefilter = Prefilter([pattern])
    assert prefilter.possible("the price is fine") == (False,)
    assert prefilter.possible("20% off the price") == (True,)
