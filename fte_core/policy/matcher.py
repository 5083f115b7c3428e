"""All of a stage's phrases in one automaton, matched on every view of a message.

A regex per phrase list cost ~300 µs per message and had to run once per view. Here every
phrase of a stage is one entry of one Aho-Corasick automaton over the view's text with
separators (space, hyphen, underscore, quotes) read as one space; a hit counts when it
starts and (unless the phrase ends in `*`) ends at a word boundary, exactly the rule of
`fte_core.text.phrase_body` (held equal by tests/property/test_prefilter.py).

Around words joined from single letters the word gaps are unknowable ("a q u o t e"
joins to "aquote"), so a second pass reads the text without spaces there: a phrase
written together ("aquote", "moneyback") counts from any word start to any word end,
and anywhere inside a joined word.

`except_within` phrases are entries too: a phrase hit inside one of them is discarded.

What one automaton cannot express stays a regex, run only when the automaton or the
literal prefilter says it can match: `patterns`, and the rare phrase with a `*` before
its last word ("violat* gdpr").

A word with one letter masked by a symbol ("refu*d", "l#wyer") is read as the phrase
word it can only be (so is one emoji or symbol in its place: "m💰ney"), and a phrase
word split by one space ("ref und", "hac ked") is read
whole; those repairs are part of the `joined` view.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import ahocorasick

from fte_core.policy.prefilter import Prefilter
from fte_core.text import normalize, phrases_regex
from fte_core.textviews import View, leet_views


@dataclass(frozen=True, slots=True)
class AtomSource:
    """One text condition: phrases (any of them) and/or regex patterns (any of them)."""

    phrases: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()
    # A phrase hit inside one of these longer phrases does not count ("hacked" inside
    # "hacked together", "court" inside "tennis court").
    exceptions: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class _Entry:
    atom: int
    prefix: bool  # the phrase's last word ends in `*`: no boundary needed after it
    compact: bool  # a multi-word phrase written together: only in the glued pass
    exception: bool = False  # marks a span where the atom's phrases do not count
    single: bool = True  # a one-word phrase (also matches written together with others)


# Between words: spaces, hyphens, underscores and quotes ("'Cost' column", "don't").
_SEPARATORS = re.compile(r"[\s_\-'\"‘’“”]+")
_NEEDS_CANONICAL = re.compile(r"[_\-'\"‘’“”]| {2}")
_APOSTROPHES = re.compile(r"['’]")
# one or two masked letters: "refu*d", "m*n*ger", "l#w#er"
_MASKED = re.compile(r"(?<![\w*#])[^\W\d_]+(?:[*#][^\W\d_]+){1,2}(?![\w*#])")
# One emoji or symbol between two letters may stand for a letter too ("m💰ney"); the
# joined view drops it ("law🔥suit"), so it is read as a mask on the written text.
_MASKABLE = re.compile(r"(?<=[^\W\d_])(?:[?%^~+=<>]|(?![\w\s])[^\x00-\x7f])(?=[^\W\d_])")


def phrase_words(phrase: str) -> list[str]:
    """The phrase's words, separators (hyphen, underscore, quotes) read as spaces."""
    words = []
    for word in normalize(phrase).replace("-", " ").replace("_", " ").split():
        words.extend(_SEPARATORS.sub(" ", word).split())
    return words


def canonical_text(text: str) -> str:
    """Separators as single spaces: the text phrases are matched on."""
    return _SEPARATORS.sub(" ", text) if _NEEDS_CANONICAL.search(text) else text


def _canonical(view: View) -> tuple[str, tuple[tuple[int, int], ...]]:
    """Separators as single spaces; the joined runs moved with the text."""
    text = view.text
    if _NEEDS_CANONICAL.search(text) is None:
        return text, view.runs
    if not view.runs:
        return _SEPARATORS.sub(" ", text), ()
    out: list[str] = []
    shift: list[tuple[int, int]] = []  # (position in text, cumulative removed)
    pos = removed = 0
    for match in _SEPARATORS.finditer(text):
        out.append(text[pos : match.start()])
        out.append(" ")
        removed += len(match.group()) - 1
        shift.append((match.end(), removed))
        pos = match.end()
    out.append(text[pos:])

    def moved(index: int) -> int:
        delta = 0
        for end, total in shift:
            if end <= index:
                delta = total
        return index - delta

    return "".join(out), tuple((moved(a), moved(b)) for a, b in view.runs)


class TextMatcher:
    """Which text atoms of a stage hold for a message, and on which view."""

    def __init__(self, atoms: Sequence[AtomSource]) -> None:
        self.size = len(atoms)
        entries: dict[str, list[_Entry]] = {}
        regex_parts: list[list[str]] = [[] for _ in atoms]
        vocabulary: set[str] = set()
        star_words: set[str] = set()  # phrase words written with a trailing `*`
        self._stem_lengths: set[int] = set()
        for index, atom in enumerate(atoms):
            inner_stars = []
            for phrase in atom.exceptions:
                stems = [w.rstrip("*") for w in phrase_words(phrase)]
                literal = " ".join(stems)
                single = len(stems) == 1
                exception = _Entry(
                    index, phrase_words(phrase)[-1].endswith("*"), False, True, single
                )
                entries.setdefault(literal, []).append(exception)
            for phrase in atom.phrases:
                words = phrase_words(phrase)
                vocabulary.update(w.rstrip("*") for w in words if "*" not in w[:-1])
                self._stem_lengths.update(len(w) - 1 for w in words if w.endswith("*"))
                star_words.update(w[:-1] for w in words if w.endswith("*"))
                if any(w.endswith("*") for w in words[:-1]):
                    inner_stars.append(phrase)
                    continue
                stems = [w.rstrip("*") for w in words]
                prefix = words[-1].endswith("*")
                single = len(stems) == 1
                entry = _Entry(index, prefix, False, False, single)
                entries.setdefault(" ".join(stems), []).append(entry)
                if "'" in phrase or "’" in phrase:  # the joined view drops "quelqu'un"'s
                    glued = " ".join(_APOSTROPHES.sub("", w) for w in normalize(phrase).split())
                    glued_words = [w.rstrip("*") for w in glued.replace("-", " ").split()]
                    entries.setdefault(" ".join(glued_words), []).append(entry)
                if not single:
                    entries.setdefault("".join(stems), []).append(_Entry(index, prefix, True))
            if inner_stars:
                regex_parts[index].append(phrases_regex(inner_stars))
            regex_parts[index].extend(f"(?:{p})" for p in atom.patterns)
        self._automaton: Any = None
        if entries:
            automaton = ahocorasick.Automaton()
            for literal, found in entries.items():
                automaton.add_word(literal, (len(literal), tuple(found)))
            automaton.make_automaton()
            self._automaton = automaton
        # One regex per pattern, each with its own required literals: a list compiled as
        # one alternation needs only the union of its branches' literals, and ran on most
        # texts ("in", "for" and a digit are everywhere).
        pairs = [(i, re.compile(part)) for i, parts in enumerate(regex_parts) for part in parts]
        self._regex_atoms = tuple(i for i, _ in pairs)
        self._regexes = tuple(r for _, r in pairs)
        self._prefilter = Prefilter(self._regexes)
        self._masks = _mask_table(vocabulary)
        self._splits = _split_table(vocabulary, star_words)
        # Only patterns over currency codes (¤usd) need the numbers view.
        self.wants_numbers = any("¤" in p for atom in atoms for p in atom.patterns)

    def match(self, views: Sequence[View]) -> tuple[str | None, ...]:
        """Per atom, the name of the first view it matched on, or None."""
        found: list[str | None] = [None] * self.size
        for view in self._with_repairs(views):
            if view.name != "numbers":  # it only rewrites amounts: no phrase gains there
                self._phrases(view, found)
            if self._regexes:
                text = view.text
                for i in self._prefilter.candidates(text):
                    atom = self._regex_atoms[i]
                    if found[atom] is None and self._regexes[i].search(text) is not None:
                        found[atom] = view.name
        return tuple(found)

    def _phrases(self, view: View, found: list[str | None]) -> None:
        if self._automaton is None:
            return
        text, runs = _canonical(view)
        last = len(text) - 1
        hits: list[tuple[int, int, int]] = []
        excepted: dict[int, list[tuple[int, int]]] = {}
        for end, (length, entries) in self._automaton.iter(text):
            start = end - length + 1
            if start and text[start - 1].isalnum():
                continue
            right = end == last or not text[end + 1].isalnum()
            for entry in entries:
                if not entry.compact and (right or entry.prefix):
                    _collect(entry, start, end, hits, excepted)
        _resolve(hits, excepted, found, view.name)
        if runs:
            hits, excepted = [], {}
            self._glued(text, runs, hits, excepted)
            _resolve(hits, excepted, found, view.name)

    def _glued(
        self,
        text: str,
        runs: tuple[tuple[int, int], ...],
        hits: list[tuple[int, int, int]],
        excepted: dict[int, list[tuple[int, int]]],
    ) -> None:
        """Around words joined from single letters, word gaps are unknowable ("a q u o t e"
        joins to "aquote"): match the phrases written together on the text without
        spaces, from a word start to a word end (any position inside a joined word is
        both), touching a joined word. Spans are reported in glued positions, consistently
        for hits and exceptions."""
        glued, starts, ends, inside = _glue(text, runs)
        for end, (length, entries) in self._automaton.iter(glued):
            start = end - length + 1
            if start not in starts or not any(inside[start : end + 1]):
                continue
            for entry in entries:
                if (entry.compact or entry.single) and (end in ends or entry.prefix):
                    _collect(entry, start, end, hits, excepted)

    def _with_repairs(self, views: Sequence[View]) -> list[View]:
        """A masked letter ("refu*d", "r3fu#d") read as the phrase word it stands for, in
        the joined and leet views; a mask that fits no word is read as an inserted symbol
        ("law*suit")."""
        out = list(views)
        for i, view in enumerate(out):
            if i and ("*" in view.text or "#" in view.text):
                out[i] = View(view.name, _MASKED.sub(self._repair, view.text), view.runs)
        has_joined = any(view.name == "joined" for view in out)
        if not has_joined and ("*" in out[0].text or "#" in out[0].text):
            repaired = _MASKED.sub(self._repair, out[0].text)
            if repaired != out[0].text:
                out.append(View("joined", repaired))
        if _MASKABLE.search(out[0].text) is not None:  # "m💰ney back", "h?man"
            starred = _MASKABLE.sub("*", out[0].text)
            # leet around the mask too ("m💰n3y b@ck"): the leet view is built from the
            # joined one, which drops the emoji, so it never sees the mask
            leet = leet_views(View("joined", starred))
            for reading in (starred, *(view.text for view in leet)):
                masked = _MASKED.sub(self._repair, reading)
                if all(masked != view.text for view in out):
                    out.append(View("joined", masked))
        rejoined = self._rejoin_split(out[-1] if has_joined else out[0])
        if rejoined is not None:
            out.append(rejoined)
        return out

    def _rejoin_split(self, view: View) -> View | None:
        """A phrase word split by one space ("ref und", "my acc ount was hac ked") read
        whole; only where the two pieces make a phrase word, so ordinary word pairs stay.
        One pass of an automaton of every phrase word's split forms ("ref und")."""
        if self._splits is None:
            return None
        text = view.text
        last = len(text) - 1
        joins = []
        for end, (length, gap, stem) in self._splits.iter(text):
            start = end - length + 1
            if start and text[start - 1].isalnum():
                continue
            if stem or end == last or not text[end + 1].isalnum():
                joins.append(start + gap)
        if not joins:
            return None
        joins = sorted(set(joins))
        starts, ends = [0, *[j + 1 for j in joins]], [*joins, len(text)]
        return View("joined", "".join(text[a:b] for a, b in zip(starts, ends, strict=True)))

    def _repair(self, match: re.Match[str]) -> str:
        return self.read_masked(match.group())

    def read_masked(self, token: str) -> str:
        """ "refu*d" → "refund": the one phrase word a masked token can be, else the token
        without its mask (the symbol was inserted, not a letter replaced)."""
        token = token.replace("#", "*")
        word = self._masks.get(token)
        if word is not None:
            return word
        mask = token.index("*")
        for length in self._stem_lengths:
            if length > mask and length <= len(token):
                stem = self._masks.get(token[:length])
                if stem is not None:
                    return stem + token[length:]
        return token.replace("*", "")


def _resolve(
    hits: list[tuple[int, int, int]],
    excepted: dict[int, list[tuple[int, int]]],
    found: list[str | None],
    name: str,
) -> None:
    """An atom holds on a hit that no exception span of the same atom contains."""
    for atom, start, end in hits:
        spans = excepted.get(atom, ())
        if found[atom] is None and not any(a <= start and end <= b for a, b in spans):
            found[atom] = name


def _collect(
    entry: _Entry,
    start: int,
    end: int,
    hits: list[tuple[int, int, int]],
    excepted: dict[int, list[tuple[int, int]]],
) -> None:
    if entry.exception:
        excepted.setdefault(entry.atom, []).append((start, end))
    else:
        hits.append((entry.atom, start, end))


def _glue(
    text: str, runs: tuple[tuple[int, int], ...]
) -> tuple[str, set[int], set[int], list[bool]]:
    """The letters and digits alone; word starts and ends among them; which were joined."""
    joined = [False] * len(text)
    for a, b in runs:
        joined[a:b] = [True] * (b - a)
    out: list[str] = []
    starts: set[int] = set()
    ends: set[int] = set()
    last = len(text) - 1
    for i, ch in enumerate(text):
        if not ch.isalnum():
            continue
        if joined[i] or i == 0 or not text[i - 1].isalnum():
            starts.add(len(out))
        if joined[i] or i == last or not text[i + 1].isalnum():
            ends.add(len(out))
        out.append(ch)
    return "".join(out), starts, ends, [joined[i] for i, ch in enumerate(text) if ch.isalnum()]


def _split_table(vocabulary: set[str], stems: set[str]) -> Any:
    """An automaton of each phrase word of 5+ letters cut by one space into pieces of 2+
    letters ("ref und", "refu nd"), with where the space is and whether the word is a
    stem (`refund*`: "ref unds" still reads "refunds"); None without such words."""
    automaton = ahocorasick.Automaton()
    for word in vocabulary:
        if len(word) < 5 or not word.isalpha():
            continue
        for i in range(2, len(word) - 1):
            split = word[:i] + " " + word[i:]
            automaton.add_word(split, (len(split), i, word in stems))
    if len(automaton) == 0:
        return None
    automaton.make_automaton()
    return automaton


def _mask_table(vocabulary: set[str]) -> dict[str, str]:
    """ "refund" → {"r*fund", "re*und", ...}: each inner letter masked once (words of 4+),
    and two inner letters apart from each other masked ("m*n*ger", words of 6+), the way
    people hide vowels."""
    table: dict[str, str] = {}
    for word in sorted(vocabulary):
        if len(word) < 4 or not word.isalpha():
            continue
        for i in range(1, len(word) - 1):
            once = word[:i] + "*" + word[i + 1 :]
            table.setdefault(once, word)
            if len(word) < 6:
                continue
            for j in range(i + 2, len(word) - 1):
                table.setdefault(once[:j] + "*" + once[j + 1 :], word)
    return table
