"""Grouping the questions the agent could not answer by meaning, and naming each group as
a knowledge-base article would be named. Pure functions over vectors from any embedder."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import msgspec

from fte_core.retrieval import clean_message

DEFAULT_SIMILARITY = 0.55  # cosine to a group's centre to join it (all-MiniLM-L6-v2 scale)
MAX_TITLE = 80


class Grouping(msgspec.Struct, frozen=True, kw_only=True):
    members: tuple[int, ...]  # indexes into the questions, most central first


def _unit(vector: Sequence[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in vector)) or 1.0
    return [x / norm for x in vector]


def _dot(a: Sequence[float], b: Sequence[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def group(
    vectors: Sequence[Sequence[float]], similarity: float = DEFAULT_SIMILARITY
) -> list[Grouping]:
    """Leader clustering on unit vectors: each question joins the group whose centre is the
    most similar (at least `similarity`), else starts one; the centres are running means.
    Groups are returned largest first; members most central first."""
    units = [_unit(v) for v in vectors]
    centres: list[list[float]] = []
    members: list[list[int]] = []
    for i, u in enumerate(units):
        scores = [_dot(u, _unit(c)) for c in centres]
        best = max(range(len(scores)), key=scores.__getitem__, default=-1)
        if best >= 0 and scores[best] >= similarity:
            n = len(members[best])
            centres[best] = [(c * n + x) / (n + 1) for c, x in zip(centres[best], u, strict=True)]
            members[best].append(i)
        else:
            centres.append(list(u))
            members.append([i])
    groups = []
    for centre, mine in zip(centres, members, strict=True):
        c = _unit(centre)
        ordered = sorted(mine, key=lambda i: (-_dot(units[i], c), i))
        groups.append(Grouping(members=tuple(ordered)))
    return sorted(groups, key=lambda g: (-len(g.members), g.members[0]))


_QUESTION = re.compile(r"[^.?!\n]*\?")
_ASK = re.compile(
    r"^(?:(?:hi|hello|hey)[,!]?\s+)?(?:how (?:do|can|could|should) (?:i|we|you)|"
    r"(?:can|could) (?:i|we|you)|is (?:it|there a way) (?:possible )?to|is there a way to|"
    r"is it possible to|i (?:want|need|would like) to|we (?:want|need) to|how to)\s+",
    re.I,
)


def suggest_title(question: str) -> str:
    """A knowledge-base article title from a group's most central question: its first
    question sentence, "how do I ..." turned into "How to ...", else the sentence."""
    text = " ".join(clean_message(question).split())
    found = _QUESTION.search(text)
    sentence = (found.group(0) if found else re.split(r"(?<=[.!])\s", text)[0]).strip(" ?.!")
    asked = _ASK.match(sentence)
    if asked:
        sentence = "How to " + sentence[asked.end() :]
    elif sentence:
        sentence = sentence[0].upper() + sentence[1:]
    if len(sentence) > MAX_TITLE:
        sentence = sentence[:MAX_TITLE].rsplit(" ", 1)[0] + "…"
    return sentence or "Untitled question"
