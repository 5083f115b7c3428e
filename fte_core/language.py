"""The language of a customer's message: English, one of the five the guardrails read, or other.

The knowledge base answers in English only; the hard triggers also ship phrases in
Spanish, French, German, Portuguese and Italian. lingua-language-detector decides
between those six languages only (its other models are never loaded: faster, smaller).
Three cheap checks come first, because lingua alone calls a Dutch question English and
is unsure on short English (confidence ~0.3 on "pls refund me asap"):

- a text dominated by a non-Latin script (Cyrillic, Greek, CJK, Hangul, Arabic, ...) is
  `other`: none of the six languages is written in it;
- a short text (under 4 words or 15 letters) is English: too short to tell, and the
  English rules are the broader ones;
- a text with enough English function words is English;
- a text of 4+ words with no English function word at all is not English, unless lingua
  is sure it is (terse English: "file wont upload says storage limit reached"): lingua
  names the closest of the five, or `other` when it is unsure. Lingua calls Dutch (and
  other languages it was not asked about) English, but it calls short product jargon
  ("revoke an api token") English with the same middling confidence; so when lingua's
  best guess is English, the text stays English unless it shows a mark of another
  language: a letter English does not write ("ø", "é", "ş") or a function word of Dutch,
  the Scandinavian languages, Polish, Turkish, Indonesian and the like;
- a short text (under 8 words) with an English function word stays English unless lingua
  is sure (0.9+) of another language: "all tasklane emails land in junk" reads as
  German to lingua ("land in") at 0.7.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from typing import Any

ENGLISH = "en"
OTHER = "other"
LANGUAGES = ("en", "es", "fr", "de", "pt", "it")

_WORDS = re.compile(r"[^\W\d_]+")
_NOT_WORDS = re.compile(r"\d|[/@_=<>{}\\]|^https?:|^www\.")
# English function words that are not also common words of the five other languages
# ("a", "no", "me", "in", "was", "will", "also" are left out for that reason), and the
# contractions texted without their apostrophe ("cant", "didnt"; not "dont": French has it).
# Each text settled here skips lingua (~0.2-1.5 ms, the features' p99).
_ENGLISH_WORDS = frozenset(
    """about after all any are as at be been before but by can could did does doing don't
    for from get got had have having his how i i'm if into is isn't it it's its just my
    need not now of or our out please pls some than thanks thank that the their them then
    there these they this those to too up us we were what when where which who why with
    without would you your can't won't didn't doesn't hi hello dear want help should and
    see use using cant doesnt didnt wont isnt arent wasnt couldnt wouldnt shouldnt whats
    wheres hows ive youre thats theres thx""".split()  # noqa: SIM905
)
_MIN_WORDS = 4
_MIN_LETTERS = 15
_MIN_CONFIDENCE = 0.5
# Terse English has no function word ("import fails says unknown assignee"); lingua is
# then sure it is English (0.85+), while the Dutch it also calls English stays below 0.6.
_SURE_ENGLISH = 0.8
_LINGUA_CHARS = 300
# Short texts with an English function word: only a sure call makes them foreign.
_SHORT_WORDS = 8
_SURE_FOREIGN = 0.9
# Function words of languages lingua is not asked about, none of them an English word
# (nor a piece of an English contraction: "ve", "ll", "re"): with a letter English does
# not write (any accent), marks that a text lingua calls English is not.
_OTHER_WORDS = frozenset(
    """ik een het mijn niet hoe zijn ook naar aan bij uit graag bedankt alstublieft
    kunnen wordt worden jullie jij je jeg ikke hvordan hvor hva hvad jag och att inte
    hur för jak nie czy jest moje moja dziękuję proszę mam
    nasil için değil nasıl bir bu şu nerede saya tidak bagaimana
    cara untuk dengan yang ini itu bisa paano ang mga ako hindi egy hogyan nem""".split()  # noqa: SIM905
)

_lock = threading.Lock()
_detector: Any = None


def _get() -> Any:
    global _detector
    if _detector is None:
        with _lock:
            if _detector is None:
                from lingua import Language, LanguageDetectorBuilder

                _detector = (
                    LanguageDetectorBuilder.from_languages(
                        Language.ENGLISH,
                        Language.SPANISH,
                        Language.FRENCH,
                        Language.GERMAN,
                        Language.PORTUGUESE,
                        Language.ITALIAN,
                    )
                    .with_preloaded_language_models()
                    .build()
                )
    return _detector


def warm() -> None:
    """Load the six language models now. lingua loads them on first use, and that first
    message waited seconds (2-9 s measured here) in the middle of a conversation; the
    memory is the same either way (the first use loads all six)."""
    _get()


def _non_latin_share(text: str) -> float:
    letters = [ch for ch in text if ch.isalpha()]
    if not letters:
        return 0.0
    if all(ch.isascii() for ch in letters):
        return 0.0
    foreign = sum(1 for ch in letters if not ch.isascii() and "LATIN" not in _name(ch))
    return foreign / len(letters)


def _name(ch: str) -> str:
    return unicodedata.name(ch, "")


def detect_language(text: str) -> str:
    """`en`, `es`, `fr`, `de`, `pt`, `it` or `other`, from the customer's own words.

    Give it the text before look-alike folding (`text.casefold()` is fine): the homoglyph
    map of `normalize` turns Cyrillic into Latin, which is right for matching and wrong
    for telling Russian from English.
    """
    # Links, addresses, ids and code-like tokens say nothing about the language.
    head = " ".join(t for t in text[:2000].split() if not _NOT_WORDS.search(t))
    if not head.isascii():  # "𝓱𝓸𝔀 𝓭𝓸 𝓲" and full-width letters are Latin letters in disguise
        head = unicodedata.normalize("NFKC", head)
    if _non_latin_share(head) > 0.5:
        return OTHER
    words = _WORDS.findall(head.casefold())
    if len(words) < _MIN_WORDS or sum(len(w) for w in words) < _MIN_LETTERS:
        return ENGLISH
    english = sum(1 for w in words if w in _ENGLISH_WORDS)
    if _enough_english(english, len(words)):
        return ENGLISH
    values = _get().compute_language_confidence_values(_sample(head))
    best = values[0] if values else None
    if best is None:
        return OTHER if english == 0 else ENGLISH
    code = str(best.language.iso_code_639_1.name).lower()
    if code == ENGLISH:
        if english > 0 or best.value >= _SURE_ENGLISH or not _other_marks(words):
            return ENGLISH
        return _second(values)
    if english and len(words) < _SHORT_WORDS and best.value < _SURE_FOREIGN:
        return ENGLISH
    if best.value >= _MIN_CONFIDENCE or english == 0:
        return code
    return ENGLISH


def _enough_english(english: int, words: int) -> bool:
    """Two English function words in five, or three in eight: a bug report is mostly
    nouns ("Steps to reproduce: open the board, drag a card, reload the page. Browser:
    Firefox on Windows"), and such texts went to lingua (~0.5 ms), which only confirmed
    English. None of the held-out or tuning messages changed language with the second
    bar."""
    return (english >= 2 and english * 5 >= words) or (english >= 3 and english * 8 >= words)


def _sample(text: str) -> str:
    """The first _LINGUA_CHARS characters, cut at a space: lingua's cost grows with the
    text (~1 us per character, the features' p99 on long emails) and 300 characters of
    one language already settle it."""
    if len(text) <= _LINGUA_CHARS:
        return text
    cut = text.rfind(" ", 0, _LINGUA_CHARS)
    return text[: cut if cut > 0 else _LINGUA_CHARS]


def _other_marks(words: list[str]) -> bool:
    """A word or letter of a language lingua was not asked about (Dutch, Polish, ...)."""
    return any(w in _OTHER_WORDS or not w.isascii() for w in words)


def _second(values: Any) -> str:
    """No English function word, yet lingua says English (Dutch does): not English."""
    for value in values[1:]:
        if value.value >= _MIN_CONFIDENCE:
            return str(value.language.iso_code_639_1.name).lower()
    return OTHER
