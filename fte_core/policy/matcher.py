"""All of a stage's phrases in one automaton, matched on every view of a message.

A regex per phrase list cost ~300 µs per message and had to run once per view. Here every
phrase of a stage is one entry of one Aho-Corasick automaton over the view's text with
separators (space, hyphen, underscore) read as one space; a hit counts when it starts
and (unless the phrase ends in `*`) ends at a word boundary, exactly the rule of
`fte_core.text.phrase_body`. Inside a word joined from single letters ("iwantarefund"
from "i w a n t a r e f u n d") a phrase counts without boundaries, and a multi-word
phrase also counts written together there.

What one automaton cannot express stays a regex, run only when the automaton or the
literal prefilter says it can match: `patterns`, and the rare phrase with a `*` before
its last word ("violat* gdpr").

A word with one letter masked by a symbol ("refu*d", "l#wyer") is read as the phrase
word it can only be; that repair is part of the `joined` view.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import ahocorasick

from fte_core.policy.prefilter import Prefilter
from fte_core.text import normalize, phrases_regex
from fte_core.textviews import View


@dataclass(frozen=True, slots=True)
class AtomSource:
    """One text condition: phrases (any of them) and/or regex patterns (any of them)."""

    phrases: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class _Entry:
    atom: int
    prefix: bool  # the phrase's last word ends in `*`: no boundary needed after it
    compact: bool  # a multi-word phrase written as one word: counts only inside a run


_SEPARATORS = re.compile(r"[\s_\-]+")
_MASKED = re.compile(r"(?<![\w*#])[^\W\d_]+[*#][^\W\d_]+(?![\w*#])")


def phrase_words(phrase: str) -> list[str]:
    return normalize(phrase).replace("-", " ").replace("_", " ").split()


def _canonical(view: View) -> tuple[str, tuple[tuple[int, int], ...]]:
    """Separators as single spaces; the joined runs moved with the text."""
    text = view.text
    if "-" not in text and "_" not in text and "  " not in text:
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
        self._stem_lengths: set[int] = set()
        for index, atom in enumerate(atoms):
            inner_stars = []
            for phrase in atom.phrases:
                words = phrase_words(phrase)
                vocabulary.update(w.rstrip("*") for w in words if "*" not in w[:-1])
                self._stem_lengths.update(len(w) - 1 for w in words if w.endswith("*"))
                if any(w.endswith("*") for w in words[:-1]):
                    inner_stars.append(phrase)
                    continue
                stems = [w.rstrip("*") for w in words]
                prefix = words[-1].endswith("*")
                entries.setdefault(" ".join(stems), []).append(_Entry(index, prefix, False))
                if len(stems) > 1:
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
        self._regex_atoms = tuple(i for i, parts in enumerate(regex_parts) if parts)
        self._regexes = tuple(re.compile("|".join(regex_parts[i])) for i in self._regex_atoms)
        self._prefilter = Prefilter(self._regexes)
        self._masks = _mask_table(vocabulary)

    def match(self, views: Sequence[View]) -> tuple[str | None, ...]:
        """Per atom, the name of the first view it matched on, or None."""
        found: list[str | None] = [None] * self.size
        for view in self._with_repairs(views):
            self._phrases(view, found)
            if self._regexes:
                hits = self._prefilter.atoms(view.text)
                for atom, hit in zip(self._regex_atoms, hits, strict=True):
                    if hit and found[atom] is None:
                        found[atom] = view.name
        return tuple(found)

    def _phrases(self, view: View, found: list[str | None]) -> None:
        if self._automaton is None:
            return
        text, runs = _canonical(view)
        last = len(text) - 1
        for end, (length, entries) in self._automaton.iter(text):
            start = end - length + 1
            inside = any(a <= start and end < b for a, b in runs)
            left = inside or start == 0 or not text[start - 1].isalnum()
            for entry in entries:
                if found[entry.atom] is not None or not left:
                    continue
                if entry.compact and not inside:
                    continue
                if inside or entry.prefix or end == last or not text[end + 1].isalnum():
                    found[entry.atom] = view.name

    def _with_repairs(self, views: Sequence[View]) -> list[View]:
        """The views plus, when a word has one masked letter, the written view repaired."""
        written = views[0]
        if not self._masks or ("*" not in written.text and "#" not in written.text):
            return list(views)
        repaired = _MASKED.sub(self._repair, written.text)
        if repaired == written.text:
            return list(views)
        return [*views, View("joined", repaired)]

    def _repair(self, match: re.Match[str]) -> str:
        token = match.group().replace("#", "*")
        word = self._masks.get(token)
        if word is not None:
            return word
        mask = token.index("*")
        for length in self._stem_lengths:
            if length > mask and length <= len(token):
                stem = self._masks.get(token[:length])
                if stem is not None:
                    return stem + token[length:]
        return match.group()


def _mask_table(vocabulary: set[str]) -> dict[str, str]:
    """ "refund" → {"r*fund", "re*und", ...}: each inner letter masked once (words of 4+)."""
    table: dict[str, str] = {}
    for word in sorted(vocabulary):
        if len(word) < 4 or not word.isalpha():
            continue
        for i in range(1, len(word) - 1):
            table.setdefault(word[:i] + "*" + word[i + 1 :], word)
    return table
