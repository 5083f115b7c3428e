"""Text normalisation shared by the rule engine, phrase matching and retrieval.

Guardrails must not be dodged by case, accents, full-width letters, look-alike letters
from other scripts or invisible characters, so every text condition runs on this form.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

# Latin look-alikes from Cyrillic and Greek that NFKC leaves alone ("rеfund" with a
# Cyrillic "е" must still say "refund"). Lower-case targets: casefold runs afterwards.
_HOMOGLYPHS = str.maketrans(
    {
        # typographic apostrophes and quotes (phones and mail clients type them): "didn’t"
        # must read "didn't" for every phrase and pattern
        "\u2019": "'",
        "\u2018": "'",
        "\u02bc": "'",
        "\u00b4": "'",
        "\u2032": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "а": "a",
        "в": "b",
        "е": "e",
        "ё": "e",
        "к": "k",
        "м": "m",
        "н": "h",
        "о": "o",
        "р": "p",
        "с": "c",
        "т": "t",
        "у": "y",
        "х": "x",
        "і": "i",
        "ї": "i",
        "ј": "j",
        "ѕ": "s",
        "ԁ": "d",
        "ɡ": "g",
        "ո": "n",
        "ս": "u",
        "А": "a",
        "В": "b",
        "Е": "e",
        "К": "k",
        "М": "m",
        "Н": "h",
        "О": "o",
        "Р": "p",
        "С": "c",
        "Т": "t",
        "У": "y",
        "Х": "x",
        "І": "i",
        "Ј": "j",
        "Ѕ": "s",
        "α": "a",
        "ο": "o",
        "ρ": "p",
        "ε": "e",
        "ι": "i",
        "κ": "k",
        "ν": "v",
        "τ": "t",
        "υ": "u",
        "χ": "x",
        "Α": "a",
        "Β": "b",
        "Ε": "e",
        "Ζ": "z",
        "Η": "h",
        "Ι": "i",
        "Κ": "k",
        "Μ": "m",
        "Ν": "n",
        "Ο": "o",
        "Ρ": "p",
        "Τ": "t",
        "Υ": "y",
        "Χ": "x",
    }
)
_WHITESPACE = re.compile(r"\s+")
# Default-ignorable marks that are not format (Cf) characters and have combining class 0:
# grapheme joiner, variation selectors, Mongolian selectors, Hangul fillers.
_IGNORABLE = re.compile(
    "[\u034f\u115f\u1160\u17b4\u17b5\u180b-\u180f\u3164\ufe00-\ufe0f\uffa0\U000e0100-\U000e01ef]"
)


def normalize(text: str) -> str:
    """NFKC, look-alikes mapped, casefold, accents folded, invisibles dropped, spaces collapsed."""
    if text.isascii():  # every step below is the identity on ASCII except these two
        return _WHITESPACE.sub(" ", text.lower()).strip()
    decomposed = unicodedata.normalize("NFKD", text)  # NFKD includes NFKC's compatibility maps
    kept = "".join(
        ch
        for ch in decomposed
        if not unicodedata.combining(ch) and unicodedata.category(ch) != "Cf"
    )
    # Look-alikes are mapped once accents are gone ("Ή" is an accented "H") and before the
    # casefold (a lower-case "η" is no "h").
    kept = _IGNORABLE.sub("", kept).translate(_HOMOGLYPHS).casefold()
    return _WHITESPACE.sub(" ", unicodedata.normalize("NFC", kept)).strip()


def phrase_body(phrase: str) -> str:
    """The regex source for one rule phrase, without its word boundaries.

    A trailing `*` on a word makes it a prefix (`refund*` matches "refunded"); a space
    matches any run of spaces, hyphens or underscores ("money back" ~ "money-back").
    """
    words = normalize(phrase).replace("-", " ").replace("_", " ").split()
    if not words:
        raise ValueError(f"phrase {phrase!r} is empty after normalisation")
    parts = []
    for word in words:
        stem = word.rstrip("*")
        if not stem:
            raise ValueError(f"phrase {phrase!r} has a bare `*`")
        parts.append(re.escape(stem) + (r"\w*" if word.endswith("*") else ""))
    return r"[\s_\-]+".join(parts)


def phrases_regex(phrases: Iterable[str]) -> str:
    """Any of the phrases, each at word boundaries.

    The boundaries wrap the whole alternation once: repeating the look-behind in every
    branch made `re` try each branch at each position (10x slower on 30 phrase groups).
    """
    return r"(?<!\w)(?:" + "|".join(phrase_body(p) for p in phrases) + r")(?!\w)"


def phrase_regex(phrase: str) -> str:
    return phrases_regex((phrase,))
