"""Queries for the knowledge base: the customer's words first, then a reformulation.

The second attempt drops greetings, sign-offs and filler so that a long, chatty message
still finds the section a short question would.
"""

from __future__ import annotations

import re

from fte_core.text import normalize

MAX_QUERY_CHARS = 1000

_STOPWORDS = frozenset(
    """a about above after again all am an and any are as at be because been before being
    below between both but by can cant could did do does doing dont down during each few
    for from further had has have having he her here hers him his how i if im in into is
    it its itself ive just let lets me more most my myself no nor not now of off on once
    only or other our ours out over own please pls plz same she should so some such than
    thank thanks thx that the their them then there these they this those through to too
    u under until up very was we were what when where which while who whom why will with
    would you your yours hi hello hey dear team support regards kind best cheers sincerely
    tasklane help need want wanted trying try tried get got know able also still really
    anyone someone something way hope ok okay yes""".split()
)
_WORD = re.compile(r"[a-z0-9][a-z0-9'+#.-]*[a-z0-9]|[a-z0-9]")


def first_query(text: str, subject: str | None) -> str:
    query = f"{subject}\n{text}" if subject else text
    return query[:MAX_QUERY_CHARS]


def reformulate(text: str, subject: str | None) -> str:
    """Content words only, de-duplicated, in order of first appearance."""
    words = _WORD.findall(normalize(first_query(text, subject)))
    content = [w.strip("'.") for w in words if w not in _STOPWORDS and len(w) > 1]
    return " ".join(dict.fromkeys(content))[:MAX_QUERY_CHARS]
