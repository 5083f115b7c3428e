"""Typos mended against the documentation's own words, for a question nothing answered.

"how do i chnage the langauge to fench" shares no word with the article on changing the
language: the full-text search finds nothing, and the unknown words make the question
look off-topic to the no-match model. A word the documentation (its text and its
customer phrasings) never uses is replaced by a word it does use that is one slip of the
fingers away: a letter left out ("timline"), one too many, or two neighbours swapped
("chnage"); the most frequent one among several. Not mended: a word of fewer than
MIN_LENGTH letters ("fnd" is one slip from too many words to guess), a wrong letter
("discord" -> "discard", "letter" -> "better": real words, one letter apart from other
real words, are everywhere), and a word that only lacks or adds an ending or a first
letter ("table" -> "tablet", "cover" -> "over"; the stemmer already meets inflections).
A word the docs lack is more often a real word we have no article for ("sourdough",
"Notion") than a typo: the mended question is only a further retry
(fte_core.retrieval), never the first search, and the no-match model still judges it.
"""

from __future__ import annotations

import re
from collections import Counter
from functools import lru_cache

MIN_LENGTH = 5
_WORD = re.compile(r"[a-z]+")
_LETTERS = "abcdefghijklmnopqrstuvwxyz"
_REMEMBERED = 50_000  # unknown words whose answer is kept, the least recently used dropped


class Speller:
    """The documentation's vocabulary with its word counts (see the module docstring)."""

    def __init__(self, text: str) -> None:
        self.counts = Counter(_WORD.findall(text.lower()))
        # a word two letters longer than any known one is one slip from none of them
        # (and its edits, a few hundred strings of its length, are not worth building)
        self._longest = max(map(len, self.counts), default=0)
        # a word's answer, worked out once (the unknown words customers type repeat)
        self._nearest = lru_cache(maxsize=_REMEMBERED)(self._nearest_known)

    def mend(self, text: str) -> str:
        """`text` with each unknown word replaced by its closest known word, if any."""
        return _WORD.sub(lambda m: self._closest(m.group()), text.lower())

    def _closest(self, word: str) -> str:
        if len(word) < MIN_LENGTH or len(word) > self._longest + 1 or word in self.counts:
            return word
        return self._nearest(word)

    def _nearest_known(self, word: str) -> str:
        known = [w for w in _one_edit(word) if w in self.counts and one_slip(word, w)]
        return min(known, key=lambda w: (-self.counts[w], w), default=word)


def _one_edit(word: str) -> set[str]:
    """Every string one letter added, left out or two neighbours swapped away from
    `word` (a few hundred, looked up: scanning the vocabulary cost ~1.5 ms a question)."""
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    left_out = {a + b[1:] for a, b in splits if b}
    swapped = {a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1}
    added = {a + c + b for a, b in splits for c in _LETTERS}
    return left_out | swapped | added


def one_slip(typed: str, known: str) -> bool:
    """`known` with one letter left out, one added (neither at either end, see the
    module docstring) or two neighbouring letters swapped gives `typed`."""
    if len(typed) == len(known):
        diffs = [i for i, (a, b) in enumerate(zip(typed, known, strict=True)) if a != b]
        return (
            len(diffs) == 2
            and diffs[1] == diffs[0] + 1
            and typed[diffs[0]] == known[diffs[1]]
            and typed[diffs[1]] == known[diffs[0]]
        )
    short, long = sorted((typed, known), key=len)
    if len(long) != len(short) + 1 or long.startswith(short) or long.endswith(short):
        return False
    i = next(i for i, (a, b) in enumerate(zip(short, long, strict=False)) if a != b)
    return long[:i] + long[i + 1 :] == short


@lru_cache(maxsize=4)
def speller(text: str) -> Speller:
    """One Speller per documentation text (the agent's dossier), built once."""
    return Speller(text)
