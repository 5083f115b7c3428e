"""Several readings of one normalised text, so a disguised word still reads as the word.

A customer who types "c h a r g e b a c k", "law🔥suit", "re-\\nfund" or "l4wyer" means
the word; the guardrails must read it. Each view is a plain string built from the
normalised text (`fte_core.text.normalize`); rules match on every view and the decision
records the view that matched:

- `written`: the normalised text as the customer wrote it;
- `joined`: runs of single letters (spaced, dotted, hyphenated, starred) joined into one
  word, symbols and emoji inside a word dropped, words broken over a line re-joined,
  letters that only look Latin read as Latin ("ʀᴇꜰᴜɴᴅ", "🇷🇪🇫🇺🇳🇩", Armenian "օ"), a
  letter typed three or more times read once ("reeeefund"), and so is a doubled letter
  English hardly ever doubles ("refuund", "huuman");
- `leet`: `joined` with digits and symbols read as letters (3→e, 1→i or l, 0→o, @→a,
  $→s, 4→a, 5→s, 7→t), only inside tokens that mix them with letters ("l4wyer", never
  "2024"); two variants when a "1" is present (i and l); "!" and "|" between letters
  read as i and l ("ph!shed", "he|p");
- `decoded`: words hidden in base64 ("cmVmdW5k" is "refund"), decoded and normalised;
  built from the raw text (`decoded_view`), since base64 is case-sensitive;
- `numbers`: `written` with numbers in words as digits and currency words and symbols as
  ISO codes (`fte_core.numbers`).

A view identical to an earlier one is not kept, so ordinary text costs one view.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from dataclasses import dataclass

from fte_core.numbers import numbers_view

VIEW_NAMES = ("written", "joined", "leet", "numbers", "decoded")

_CHAR = r"[^\W_]|[@$]"  # a letter or digit, or a symbol that stands for a letter
# Three or more single characters, each followed by 1-3 separators (not a letter, digit
# or line break): "c h a r g e", "m.o.n.e.y", "r-e-f-u-n-d", "l 4 w y e r".
_SINGLE_RUN = re.compile(
    rf"(?<![^\W_])(?:{_CHAR})(?P<gap>(?:[^\w\n@$]|_){{1,3}})(?:(?:{_CHAR})(?P=gap))+(?:{_CHAR})"
    r"(?![\w@$*#'’])"
)  # the same gap throughout: "m.o.n.e.y b.a.c.k" is two words, not one
_SEPARATORS = re.compile(r"[^\w@$]|_")  # what a single-letter run is joined across
_LINE_HYPHEN = re.compile(r"(?<=[^\W\d_])-\s+(?=[^\W\d_])")  # "re-\nfund" (after normalise)
_CONTRACTION = re.compile(r"(s|t|m|d|re|ve|ll)\b")  # "don't", "it's", "we'll" keep theirs
_LEET_TOKEN = re.compile(r"[a-z0-9@$]*[a-z][a-z0-9@$]*")
_LEET_CHARS = re.compile(r"[013457@$]")
_LEET_I = str.maketrans(
    {"3": "e", "1": "i", "0": "o", "@": "a", "$": "s", "4": "a", "5": "s", "7": "t"}
)
_LEET_L = str.maketrans({"1": "l"})
_LEET_ONE = ("some", "any", "no", "every")  # "s0me1", "any1": the digit says its name
# "ph!shed", "h|jacked": "!" and "|" between letters stand for i and l; the joined view
# drops them as symbols inside a word, so the leet view reads them from the written text
_LEET_PUNCT = re.compile(r"(?<=[^\W\d_])[!|]+(?=[^\W\d_])")
_LEET_PUNCT_READ = str.maketrans({"!": "i", "|": "l"})
_ALPHABET = "abcdefghijklmnopqrstuvwxyz"
# "reeeefund": a key held down; a run of w only inside a word ("lawwwyer"): "www" on its
# own is a web address
_REPEATS = re.compile(r"([^\W\d_w])\1{2,}|(?<=[^\W\d_])(w)ww+|(w)ww+(?=[^\W\d_])")
# "refuund", "huuman", "laawyer": a doubled letter English words almost never double is a
# stretched word too ("vacuum" and "bazaar" read "vacum" and "bazar" in this view only)
_RARE_DOUBLES = re.compile(r"([auihjkqvyx])\1")


def _lookalikes() -> dict[int, str]:
    """Letters `fte_core.text.normalize` leaves alone that read as Latin ones: small
    capitals, regional indicators and negative circled or squared letters (emoji
    alphabets), and a few Cyrillic, Armenian and Latin look-alikes."""
    small_capitals = "ᴀʙᴄᴅᴇꜰɢʜɪᴊᴋʟᴍɴᴏᴘǫʀꜱᴛᴜᴠᴡxʏᴢ"  # no small capital x
    table = {ord(ch): latin for ch, latin in zip(small_capitals, _ALPHABET, strict=True)}
    for first in (0x1F1E6, 0x1F150, 0x1F170):  # 🇦.., 🅐.., 🅰..
        table.update({first + i: latin for i, latin in enumerate(_ALPHABET)})
    table.update({ord(ch): latin for ch, latin in zip("һԛԝӏօհցıɑɩʋ", "hqwlohgiaiv", strict=True)})
    return table


_LOOKALIKES = _lookalikes()


@dataclass(frozen=True, slots=True)
class View:
    name: str
    text: str
    # Spans of words joined from single letters: inside them a phrase may match without
    # word boundaries ("iwantarefund" from "i w a n t a r e f u n d").
    runs: tuple[tuple[int, int], ...] = ()


_SYMBOL_RUN = re.compile(r"(?:[^\w\s@$]|_)+")


def _letter(ch: str) -> bool:
    return ch.isalpha() or ch in "@$"


def _inner(text: str, start: int, end: int) -> bool:
    """Symbols at [start, end) sit inside a word: alphanumerics on both sides, one a letter
    (a dot between two digits is a decimal point, not a disguise)."""
    if start == 0 or end >= len(text):
        return False
    left, right = text[start - 1], text[end]
    if not (left.isalnum() or left in "@$") or not (right.isalnum() or right in "@$"):
        return False
    return _letter(left) or _letter(right)


def _keep(text: str, start: int, end: int) -> bool:
    symbols = text[start:end]
    if symbols in ("*", "#"):
        return True  # may stand for a letter ("refu*d"): the phrase matcher repairs it
    return symbols in ("'", "’") and _CONTRACTION.match(text, end) is not None


def _dropped(text: str) -> list[tuple[int, int]]:
    """Spans of symbols inside words to drop ("law🔥suit"); "don't" keeps its apostrophe."""
    spans = []
    for match in _SYMBOL_RUN.finditer(text):
        start, end = match.span()
        if _inner(text, start, end) and not _keep(text, start, end):
            spans.append((start, end))
    return spans


def _drop_inner_symbols(text: str) -> str:
    spans = _dropped(text)
    if not spans:
        return text
    out, pos = [], 0
    for start, end in spans:
        out.append(text[pos:start])
        pos = end
    out.append(text[pos:])
    return "".join(out)


def _join_runs(text: str) -> tuple[str, tuple[tuple[int, int], ...]]:
    out: list[str] = []
    runs: list[tuple[int, int]] = []
    pos = 0
    length = 0
    for match in _SINGLE_RUN.finditer(text):
        joined = _SEPARATORS.sub("", match.group())
        if not any(ch.isalpha() for ch in joined):
            continue  # "1 2 3" is a list of numbers, not a word
        before = text[pos : match.start()]
        out.append(before)
        length += len(before)
        out.append(joined)
        runs.append((length, length + len(joined)))
        length += len(joined)
        pos = match.end()
    out.append(text[pos:])
    return "".join(out), tuple(runs)


def _drop_symbols_tracking(
    text: str, runs: tuple[tuple[int, int], ...]
) -> tuple[str, tuple[tuple[int, int], ...]]:
    """Symbols inside words dropped from the whole text; the joined runs moved along."""
    if not runs:
        return _drop_inner_symbols(text), ()
    kept = [True] * len(text)
    for start, end in _dropped(text):
        kept[start:end] = [False] * (end - start)
    before = [0] * (len(text) + 1)
    for i, keep in enumerate(kept):
        before[i + 1] = before[i] + keep
    out = "".join(ch for ch, keep in zip(text, kept, strict=True) if keep)
    return out, tuple((before[a], before[b]) for a, b in runs)


def _undisguise(written: str) -> str:
    """Look-alike letters read as Latin, a held-down key read once."""
    if not written.isascii():
        written = written.translate(_LOOKALIKES)
    return _RARE_DOUBLES.sub(r"\1", _REPEATS.sub(_once, written))


def _once(match: re.Match[str]) -> str:
    return match.group()[0]


def joined_view(written: str) -> View:
    """Re-join line-broken words, join single letters, then drop symbols inside words."""
    written = _undisguise(written)
    if "- " in written:
        written = _LINE_HYPHEN.sub("", written)
    text, runs = _join_runs(written)
    text, runs = _drop_symbols_tracking(text, runs)
    return View("joined", text, runs)


def leet_views(joined: View) -> tuple[View, ...]:
    text = joined.text
    if _LEET_CHARS.search(text) is None:
        return ()

    def read(table: dict[int, str], extra: dict[int, str] | None) -> str:
        def one(match: re.Match[str]) -> str:
            token = match.group()
            if _LEET_CHARS.search(token) is None or token.isalpha():
                return token
            if token.endswith("1") and token[:-1].translate(_LEET_I) in _LEET_ONE:
                return token[:-1].translate(_LEET_I) + "one"
            if extra is not None:
                token = token.translate(extra)
            return token.translate(table)

        return _LEET_TOKEN.sub(one, text)

    first = read(_LEET_I, None)
    views = [View("leet", first, joined.runs)] if first != text else []
    if "1" in text:
        second = read(_LEET_I, _LEET_L)
        if second not in (text, first):
            views.append(View("leet", second, joined.runs))
    return tuple(views)


def _read_punct(match: re.Match[str]) -> str:
    return match.group().translate(_LEET_PUNCT_READ)


def plain_view(written: str) -> View:
    """One reading with every letter disguise undone at once ("!" and "|" between letters,
    joins, look-alikes, held-down keys, leet with 1 read as i), for a reader that cannot
    try several views: the mood lexicon (`fte_core.sentiment`)."""
    if _LEET_PUNCT.search(written) is not None:
        written = _LEET_PUNCT.sub(_read_punct, written)
    joined = joined_view(written)
    leet = leet_views(joined)
    return leet[0] if leet else joined


def text_views(written: str, *, numbers: bool = True) -> tuple[View, ...]:
    """The distinct views of a normalised text, `written` first; `numbers=False` skips the
    numbers view (only rules with currency patterns read it)."""
    views = [View("written", written)]
    joined = joined_view(written)
    if joined.text != written:
        views.append(joined)
    views.extend(leet_views(joined))
    if _LEET_PUNCT.search(written) is not None:
        punct = joined_view(_LEET_PUNCT.sub(_read_punct, written))
        # "d!sc0unt": "!" and digits in one word are read together
        for view in (punct, *leet_views(punct)[:1]):
            if all(view.text != seen.text for seen in views):
                views.append(View("leet", view.text, view.runs))
    if numbers:
        amounts = numbers_view(written)
        if amounts != written:
            views.append(View("numbers", amounts))
    return tuple(views)


_BASE64 = re.compile(r"(?<![A-Za-z0-9+/=])[A-Za-z0-9+/]{8,}={0,2}(?![A-Za-z0-9+/=])")
_READABLE = re.compile(r"[a-zA-Z ]")


def decoded_view(raw: str, normalize_text: Callable[[str], str]) -> View | None:
    """Base64 tokens that decode to readable text, as a view of their own."""
    decoded = []
    for match in _BASE64.finditer(raw):
        token = match.group()
        if token.isalpha() and (token.islower() or token.isupper()):
            continue  # a plain long word, not an encoding
        try:
            text = base64.b64decode(token + "=" * (-len(token) % 4), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            continue
        if len(text) >= 4 and len(_READABLE.findall(text)) >= 0.8 * len(text):
            decoded.append(text)
    if not decoded:
        return None
    return View("decoded", normalize_text(" ".join(decoded)))
