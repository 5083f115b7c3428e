"""vaderSentiment's analyzer with its quadratic steps made linear, scores unchanged.

For every lexicon word, vaderSentiment lowercases the WHOLE message three or four times
(`_negation_check`, `_special_idioms_check`) to read at most six words of it, and copies
its negation list on every lookup: ~60 % of its time on a 300-character message, and
why its cost grows with the square of the message's length. These overrides read only
the words they look at. The emoji translation is skipped when the message holds no emoji
(the same text comes out). `tests/property/test_vader.py` holds the result equal to the
original analyzer's on generated messages.
"""

from __future__ import annotations

from typing import Any

from vaderSentiment import vaderSentiment as vs  # noqa: N813 - the module is named so

_NEGATE = frozenset(vs.NEGATE)
_NEVER_SO = ("so", "this")


def _negated(word: str) -> bool:
    """`vs.negated([word])` for one word, without copying the negation list."""
    lower = str(word).lower()
    return lower in _NEGATE or "n't" in lower


class FastAnalyzer(vs.SentimentIntensityAnalyzer):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self._emoji_chars = frozenset(k for k in self.emojis if len(k) == 1)

    def polarity_scores(self, text: str) -> dict[str, float]:
        if self._emoji_chars.isdisjoint(text):
            return self._scores(text.strip())
        result: dict[str, float] = super().polarity_scores(text)
        return result

    def _scores(self, text: str) -> dict[str, float]:
        """`polarity_scores` after the emoji step, as vaderSentiment writes it."""
        sentitext = vs.SentiText(text)
        sentiments: list[float] = []
        words = sentitext.words_and_emoticons
        last = len(words) - 1
        for i, item in enumerate(words):
            lower = item.lower()
            if lower in vs.BOOSTER_DICT or (
                i < last and lower == "kind" and words[i + 1].lower() == "of"
            ):
                sentiments.append(0)
                continue
            sentiments = self.sentiment_valence(0, sentitext, item, i, sentiments)
        sentiments = self._but_check(words, sentiments)
        result: dict[str, float] = self.score_valence(sentiments, text)
        return result

    @staticmethod
    def _negation_check(valence: float, words: list[Any], start_i: int, i: int) -> float:
        def at(k: int) -> str:
            return str(words[k]).lower()

        if start_i == 0 and _negated(at(i - 1)):
            valence = valence * vs.N_SCALAR
        if start_i == 1:
            if at(i - 2) == "never" and at(i - 1) in _NEVER_SO:
                valence = valence * 1.25
            elif at(i - 2) == "without" and at(i - 1) == "doubt":
                pass
            elif _negated(at(i - 2)):
                valence = valence * vs.N_SCALAR
        if start_i == 2:
            if (at(i - 3) == "never" and at(i - 2) in _NEVER_SO) or at(i - 1) in _NEVER_SO:
                valence = valence * 1.25
            elif at(i - 3) == "without" and (at(i - 2) == "doubt" or at(i - 1) == "doubt"):
                pass
            elif _negated(at(i - 3)):
                valence = valence * vs.N_SCALAR
        return valence

    @staticmethod
    def _special_idioms_check(valence: float, words: list[Any], i: int) -> float:
        w3, w2, w1, w0 = (str(words[k]).lower() for k in (i - 3, i - 2, i - 1, i))
        for seq in (f"{w1} {w0}", f"{w2} {w1} {w0}", f"{w2} {w1}", f"{w3} {w2} {w1}", f"{w3} {w2}"):
            if seq in vs.SPECIAL_CASES:
                valence = vs.SPECIAL_CASES[seq]
                break
        if len(words) - 1 > i:
            zeroone = f"{w0} {str(words[i + 1]).lower()}"
            if zeroone in vs.SPECIAL_CASES:
                valence = vs.SPECIAL_CASES[zeroone]
        if len(words) - 1 > i + 1:
            ahead = f"{w0} {str(words[i + 1]).lower()} {str(words[i + 2]).lower()}"
            if ahead in vs.SPECIAL_CASES:
                valence = vs.SPECIAL_CASES[ahead]
        for n_gram in (f"{w3} {w2} {w1}", f"{w3} {w2}", f"{w2} {w1}"):
            if n_gram in vs.BOOSTER_DICT:
                valence = valence + vs.BOOSTER_DICT[n_gram]
        return valence
