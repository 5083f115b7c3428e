"""A sound literal prefilter: skip a text atom's regex when it cannot possibly match.

Python's `re` tries every alternative at every position, so 40 phrase groups cost
~300 µs on a 200-character message. Most atoms need some literal to be present
("refund", "lawyer", ...). We derive, from the parsed regex, a set of literals at
least one of which every match must contain, find all literals of a stage in one
Aho-Corasick pass, and run only the regexes whose literals were seen. The derivation
errs towards "no requirement" (always run the regex), never towards a wrong skip:
`tests/property` holds prefiltered atoms equal to plain `re.search` on random texts.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from re import _constants as sre  # type: ignore[attr-defined]
from re import _parser as sre_parse  # type: ignore[attr-defined]
from typing import Any

import ahocorasick

Requirement = frozenset[str] | None  # None: no literal is required (always run the regex)
DIGIT = "\x00digit"  # a needle for "any decimal digit" (\d), which no literal can express
_DIGIT = re.compile(r"\d")
_MAX_CLASS = 16  # a character class of up to this many characters becomes 1-char needles

_REPEATS = {sre.MAX_REPEAT, sre.MIN_REPEAT, getattr(sre, "POSSESSIVE_REPEAT", None)}


def required_literals(pattern: re.Pattern[str]) -> Requirement:
    if pattern.flags & re.IGNORECASE:
        return None  # case-folded matching of literals is not a plain substring test
    try:
        parsed = sre_parse.parse(pattern.pattern, pattern.flags)
    except (re.error, RecursionError):
        return None
    found = _sequence(list(parsed))
    if found is None or any(not _bare(n) for n in found):
        return None
    return found


WORD_START = "\x01"  # prefix of a needle that must start after a non-alphanumeric


def _bare(needle: str) -> str:
    return needle.removeprefix(WORD_START)


def _score(req: frozenset[str]) -> tuple[int, int]:
    # A digit is everywhere in drafts and tickets: any literal is more selective.
    return (min(0 if n == DIGIT else len(_bare(n)) for n in req), -len(req))


def _best(candidates: list[Requirement]) -> Requirement:
    usable = [c for c in candidates if c]
    return max(usable, key=_score) if usable else None


def _is_word_lookbehind(op: Any, av: Any) -> bool:
    """`(?<!\\w)`: the character before is not a word character."""
    if op is not sre.ASSERT_NOT or av[0] != -1:
        return False
    sub = list(av[1])
    return sub == [(sre.IN, [(sre.CATEGORY, sre.CATEGORY_WORD)])]


def _is_separator_run(op: Any, av: Any) -> bool:
    """A repeat (min 1) of a class with no alphanumerics, like `[\\s_\\-]+`."""
    if op not in _REPEATS or av[0] < 1:
        return False
    sub = list(av[2])
    if len(sub) != 1 or sub[0][0] is not sre.IN:
        return False
    for kind, value in sub[0][1]:
        if kind is sre.LITERAL and not chr(value).isalnum():
            continue
        if kind is sre.CATEGORY and value is sre.CATEGORY_SPACE:
            continue
        return False
    return True


def _sequence(items: Sequence[tuple[Any, Any]], after_gap: bool = False) -> Requirement:
    """Every match of a concatenation contains every item's match: keep the best one.

    `after_gap` says the character before this sequence is not alphanumeric (or there is
    none); a literal that starts there with an alphanumeric becomes a word-start needle.
    """
    return _best(_candidates(items, after_gap))


def _candidates(
    items: Sequence[tuple[Any, Any]], after_gap: bool = False, nested: bool = False
) -> list[Requirement]:
    """Each item's requirement (all of them hold in every match); `nested` also lists
    every requirement inside plain groups and repeats, not just their best."""
    candidates: list[Requirement] = []
    run: list[str] = []
    run_at_gap = False
    gap = after_gap
    for op, av in items:
        if op is sre.LITERAL:
            if not run:
                run_at_gap = gap and chr(av).isalnum()
            run.append(chr(av))
            gap = False
            continue
        if run:
            candidates.append(_literal(run, run_at_gap))
            run = []
        if (op is sre.AT and av is sre.AT_BOUNDARY) or _is_word_lookbehind(op, av):
            gap = True  # before a word character, \b also means a non-word one precedes
            continue
        inner = _inner_items(op, av) if nested else None
        if inner is None:
            candidates.append(_item(op, av, gap))
        else:
            candidates.extend(_candidates(inner, gap, nested))
        gap = _is_separator_run(op, av)
    if run:
        candidates.append(_literal(run, run_at_gap))
    return candidates


def _inner_items(op: Any, av: Any) -> list[tuple[Any, Any]] | None:
    """The items of a group or a (min 1) repeat that every match contains, else None."""
    if op is sre.SUBPATTERN and not av[1] & re.IGNORECASE:
        return list(av[3])
    if op in _REPEATS and av[0] >= 1:
        return list(av[2])
    return None


def all_required(pattern: re.Pattern[str]) -> tuple[frozenset[str], ...]:
    """Every literal set a match must touch (a conjunction, `required_literals` is its
    best member): "\\d{1,3}%? (of )?the" needs a digit AND "%" AND "the", so the regex
    runs only when all three occur, not whenever the one chosen ("the") does."""
    if required_literals(pattern) is None:
        return ()
    parsed = sre_parse.parse(pattern.pattern, pattern.flags)
    found = _candidates(list(parsed), nested=True)
    return tuple(dict.fromkeys(c for c in found if c and all(_selective(n) for n in c)))


def _selective(needle: str) -> bool:
    """Worth a lookup: a space, a dot or a one-letter word is in every text, and each hit
    is a step of the scan."""
    bare = _bare(needle)
    return needle == DIGIT or len(bare) >= 2 or bare in "%$€£¥₹#@¤"


def _literal(run: list[str], at_gap: bool) -> frozenset[str]:
    text = "".join(run)
    return frozenset({WORD_START + text if at_gap else text})


def _item(op: Any, av: Any, gap: bool) -> Requirement:
    if op is sre.SUBPATTERN:
        _group, add_flags, _del_flags, sub = av
        if add_flags & re.IGNORECASE:
            return None
        return _sequence(list(sub), gap)
    if op is sre.BRANCH:
        alternatives = [_sequence(list(branch), gap) for branch in av[1]]
        if any(a is None for a in alternatives):
            return None
        return frozenset().union(*(a for a in alternatives if a is not None))
    if op in _REPEATS:
        low, _high, sub = av
        return _sequence(list(sub), gap) if low >= 1 else None
    if op is getattr(sre, "ATOMIC_GROUP", None):
        return _sequence(list(av), gap)
    if op is sre.IN:
        return _char_class(av)
    return None  # anchors, look-arounds, back-references: require nothing


def _char_class(items: list[tuple[Any, Any]]) -> Requirement:
    """A class like [$€£] or \\d: one of its characters must be in the text."""
    chars: set[str] = set()
    for op, av in items:
        if op is sre.LITERAL:
            chars.add(chr(av))
        elif op is sre.RANGE and av[1] - av[0] < _MAX_CLASS:
            chars.update(chr(c) for c in range(av[0], av[1] + 1))
        elif op is sre.CATEGORY and av is sre.CATEGORY_DIGIT:
            chars.add(DIGIT)
        else:
            return None  # negated classes, \\w, \\s, wide ranges
    return frozenset(chars) if 0 < len(chars) <= _MAX_CLASS else None


class Prefilter:
    """Which atoms of a stage can match a text, from one pass over it."""

    def __init__(self, atoms: Sequence[re.Pattern[str]]) -> None:
        self._atoms = tuple(atoms)
        self._needs: list[frozenset[str] | None] = [required_literals(p) for p in atoms]
        # The other requirements of each regex, checked by substring once its best needle
        # was seen (a word-start needle by its bare text: weaker, still necessary); a
        # second automaton over them cost more than it saved ("the" is in every text).
        self._also = tuple(
            tuple(
                tuple(sorted({_bare(n) for n in r}))
                for r in all_required(p)
                if r != need and DIGIT not in r
            )
            for p, need in zip(atoms, self._needs, strict=True)
        )
        self._wants_digit = tuple(
            need != frozenset({DIGIT}) and any(r == frozenset({DIGIT}) for r in all_required(p))
            for p, need in zip(atoms, self._needs, strict=True)
        )
        # Inverted once per rule set: needle -> the regexes it makes possible, so a text
        # costs its hits, not a set test per regex (~80 per stage, on every view).
        self._always = tuple(i for i, need in enumerate(self._needs) if need is None)
        self._by_needle: dict[str, tuple[int, ...]] = {}
        for i, need in enumerate(self._needs):
            for needle in need or ():
                self._by_needle[needle] = (*self._by_needle.get(needle, ()), i)
        self._automaton: Any = None
        literals = sorted({_bare(n) for need in self._needs if need for n in need} - {DIGIT})
        if literals:
            automaton = ahocorasick.Automaton()
            for lit in literals:
                automaton.add_word(lit, lit)
            automaton.make_automaton()
            self._automaton = automaton

    def atoms(self, text: str) -> tuple[bool, ...]:
        return tuple(
            possible and pattern.search(text) is not None
            for pattern, possible in zip(self._atoms, self.possible(text), strict=True)
        )

    def possible(self, text: str) -> tuple[bool, ...]:
        """Which regexes can match `text` at all (their required literals occur in it)."""
        can = [False] * len(self._needs)
        for i in self.candidates(text):
            can[i] = True
        return tuple(can)

    def candidates(self, text: str) -> list[int]:
        """The indices of the regexes that can match `text`, in order."""
        found = set(self._always)
        by_needle = self._by_needle
        if self._automaton is not None:
            for end, lit in self._automaton.iter(text):
                found.update(by_needle.get(lit, ()))
                start = end - len(lit) + 1
                if start == 0 or not text[start - 1].isalnum():
                    found.update(by_needle.get(WORD_START + lit, ()))
        digit = _DIGIT.search(text) is not None
        if digit:
            found.update(by_needle.get(DIGIT, ()))
        also, wants_digit = self._also, self._wants_digit
        out = []
        for i in sorted(found):
            if (digit or not wants_digit[i]) and (not also[i] or _all_occur(also[i], text)):
                out.append(i)
        return out


def _all_occur(needs: tuple[tuple[str, ...], ...], text: str) -> bool:
    """Each set has a member in `text` (plain loops: generators cost more than the tests)."""
    for need in needs:
        for needle in need:
            if needle in text:
                break
        else:
            return False
    return True
