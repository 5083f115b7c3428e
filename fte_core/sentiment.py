"""Sentiment in [0, 1] from vaderSentiment (its scores, computed by fte_core.vader):
0 furious, 0.5 neutral, 1 delighted.

The analyzer reads its lexicon from disk, so it is built on first use, not at import.
"""

from __future__ import annotations

import threading

from fte_core.vader import FastAnalyzer

_lock = threading.Lock()
_analyzer: FastAnalyzer | None = None


def _get() -> FastAnalyzer:
    global _analyzer
    if _analyzer is None:
        with _lock:
            if _analyzer is None:
                _analyzer = FastAnalyzer()
    return _analyzer


# VADER is quadratic in the number of words (a 22 KB message took 1.3 s, 88 KB 26 s), so
# only the head of a message is scored: customers state their mood up front, and what
# follows in a long email is mostly logs, signatures and quoted history.
MAX_SCORED_CHARS = 4000


def sentiment_score(text: str) -> float:
    """VADER's compound score mapped linearly from [-1, 1] to [0, 1], 4 decimals."""
    compound = float(_get().polarity_scores(text[:MAX_SCORED_CHARS])["compound"])
    return round((compound + 1.0) / 2.0, 4)
