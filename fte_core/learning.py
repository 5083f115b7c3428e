"""Grouping the questions the agent could not answer by meaning, and naming each group as
a knowledge-base article would be named. Pure functions over vectors from any embedder."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import msgspec

from fte_core.retrieval import clean_message

# cosine to a group's centre to join it, on the all-MiniLM-L6-v2 scale: paraphrases of one
# question scored 0.46-0.79 to their group, unrelated support questions at most 0.34; the
# cut sits midway (at 0.45, next to the paraphrases' floor, the int8 graph's 0.449 split a
# three-question group that the float graph's 0.451 kept)
DEFAULT_SIMILARITY = 0.40
MAX_TITLE = 80


class Grouping(msgspec.Struct, frozen=True, kw_only=True):
    members: tuple[int, ...]  # indexes into the questions, most central first


def _unit(vector: Sequence[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in vector)) or 1.0
    return [x / norm for x in vector]


def _dot(a: Sequence[float], b: Sequence[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def _cos(a: Sequence[float], b: Sequence[float]) -> float:
    return _dot(_unit(a), _unit(b))


def group(
    vectors: Sequence[Sequence[float]], similarity: float = DEFAULT_SIMILARITY
) -> list[Grouping]:
    """Centroid clustering on unit vectors: a first pass puts each question in the group
    whose centre is the most similar (at least `similarity`), else a new group; then the two
    groups with the most similar centres merge while they reach `similarity`, so the order
    the questions came in does not split a group. Largest groups first; members most
    central first."""
    units = [_unit(v) for v in vectors]
    sums: list[list[float]] = []
    members: list[list[int]] = []
    for i, u in enumerate(units):
        scores = [_cos(u, c) for c in sums]
        best = max(range(len(scores)), key=scores.__getitem__, default=-1)
        if best >= 0 and scores[best] >= similarity:
            sums[best] = [c + x for c, x in zip(sums[best], u, strict=True)]
            members[best].append(i)
        else:
            sums.append(list(u))
            members.append([i])
    while len(sums) > 1:
        score, a, b = max(
            (_cos(sums[a], sums[b]), a, b)
            for a in range(len(sums))
            for b in range(a + 1, len(sums))
        )
        if score < similarity:
            break
        sums[a] = [x + y for x, y in zip(sums[a], sums.pop(b), strict=True)]
        members[a] += members.pop(b)
    groups = []
    for total, mine in zip(sums, members, strict=True):
        c = _unit(total)
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


def _sentence(question: str) -> str:
    text = " ".join(clean_message(question).split())
    found = _QUESTION.search(text)
    return (found.group(0) if found else re.split(r"(?<=[.!])\s", text)[0]).strip(" ?.!")


def suggest_title(questions: Sequence[str]) -> str:
    """A knowledge-base article title from a group's questions, most central first: the
    first one asked as "how do I ..." (or alike) becomes "How to ...", else the most
    central question's first sentence."""
    sentences = [s for s in (_sentence(q) for q in questions) if s]
    asked = next((m for m in (_ASK.match(s) for s in sentences) if m), None)
    if asked is not None:
        title = "How to " + asked.string[asked.end() :]
    elif sentences:
        title = sentences[0][0].upper() + sentences[0][1:]
    else:
        return "Untitled question"
    if len(title) > MAX_TITLE:
        title = title[:MAX_TITLE].rsplit(" ", 1)[0] + "…"
    return title
