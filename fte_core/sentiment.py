"""Sentiment in [0, 1] from vaderSentiment (its scores, computed by fte_core.vader):
0 furious, 0.5 neutral, 1 delighted.

The analyzer reads its lexicon from disk, so it is built on first use, not at import.

The lexicon only knows words as written: "u s e l e s s", "w-o-r-s-t", "p4th3tic" or
full-width "ｕｓｅｌｅｓｓ" score neutral, so an insult disguised to slip past the phrase
rules would slip past the mood rules too. The message is therefore also scored as the
phrase rules read it (`fte_core.textviews.plain_view`), and the more negative of the two
readings counts: undoing a disguise can only reveal a mood, never hide one, and a message
with nothing disguised is scored once, as before.
"""

from __future__ import annotations

import threading

from fte_core.text import normalize
from fte_core.textviews import plain_view
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

# A word the lexicon knows, found inside letters joined from a spaced run ("ihate" from
# "i h a t e", "horribleservice" from "h o r r i b l e  s e r v i c e": the normaliser
# collapses the wider gap between the words), is read on its own. Shorter words hide
# inside ordinary ones too easily ("ugh", "bad").
MIN_FOUND_WORD = 4
MAX_FOUND_WORD = 16


def sentiment_score(text: str, *, disguised: bool = True) -> float:
    """VADER's compound score mapped linearly from [-1, 1] to [0, 1], 4 decimals; the more
    negative of the message as written and as read with its disguises undone.

    `disguised=False`: the caller's text views found nothing to undo (only the written
    view), so the undisguised reading, which costs as much as VADER itself, is skipped.
    """
    head = text[:MAX_SCORED_CHARS]
    compound = _compound(head)
    reading = undisguised(head) if disguised else None
    if reading is not None:
        compound = min(compound, _compound(reading))
    return round((compound + 1.0) / 2.0, 4)


def _compound(text: str) -> float:
    return float(_get().polarity_scores(text)["compound"])


def only_case_and_spacing(text: str, normalized: str) -> bool:
    """Normalisation changed nothing a second reading could use (look-alike letters,
    full-width forms and the like are folded there)."""
    return normalized == " ".join(text.lower().split())


def undisguised(text: str) -> str | None:
    """The message as the phrase rules read it, its joined runs split at the lexicon's
    words; None when that is the message itself (only case and spacing differ)."""
    normalized = normalize(text)
    view = plain_view(normalized)
    if view.text == normalized and only_case_and_spacing(text, normalized):
        return None
    if not view.runs:
        return view.text
    lexicon = _get().lexicon
    out, pos = [], 0
    for start, end in view.runs:
        out.append(view.text[pos:start])
        out.append(" ".join(_split_at_words(view.text[start:end], lexicon)))
        pos = end
    out.append(view.text[pos:])
    return "".join(out)


def _split_at_words(letters: str, lexicon: dict[str, float]) -> list[str]:
    """`letters` cut around the longest lexicon word inside it, recursively on both sides."""
    if letters in lexicon or len(letters) <= MIN_FOUND_WORD:
        return [letters]
    best = None
    for size in range(min(MAX_FOUND_WORD, len(letters) - 1), MIN_FOUND_WORD - 1, -1):
        best = next(
            (i for i in range(len(letters) - size + 1) if letters[i : i + size] in lexicon),
            None,
        )
        if best is not None:
            break
    if best is None:
        return [letters]
    head, word, tail = letters[:best], letters[best : best + size], letters[best + size :]
    return [
        *(_split_at_words(head, lexicon) if head else []),
        word,
        *(_split_at_words(tail, lexicon) if tail else []),
    ]
