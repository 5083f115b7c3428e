"""Is a draft answer grounded in the passages it cites? (the `ungrounded` output check)

An answer citing no passage is ungrounded. Otherwise every sentence that claims
something is compared with the cited passages (their titles and text): a sentence with
at least MIN_CLAIM_WORDS content words needs MIN_SHARE of them in the passages, and every
number it states (a limit, a duration, a version) must appear there. Words that frame
an answer rather than claim anything ("help article", "our team will follow up") do
not count. Lexical, stemmed like retrieval: it catches a model that answers from its
own knowledge, or cites one article while stating another's facts; it cannot catch a
paraphrase that reverses a fact with the passage's own words ("cannot" -> "can").
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from fte_core.embedding import words
from fte_core.formatting import split_sentences
from fte_core.models import Passage
from fte_core.ports import Answer

MIN_CLAIM_WORDS = 3
MIN_SHARE = 0.6
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_FRAMING = frozenset(
    words(
        "here is what our help article says from this guide documentation explains "
        "question questions team member colleague person specialist follow followed "
        "ticket pass passed look looking reply replies write back able answer answered "
        "step steps section page also other first second next"
    )
)


def grounded(answer: Answer, passages: Sequence[Passage]) -> bool:
    cited = [p for p in passages if p.id in set(answer.passage_ids)]
    if not cited:
        return False
    source = " ".join(f"{p.section}\n{p.text}" for p in cited)
    vocabulary = set(words(source)) | _FRAMING
    numbers = set(_NUMBER.findall(source))
    return all(_supported(s, vocabulary, numbers) for s in split_sentences(answer.text))


def _supported(sentence: str, vocabulary: set[str], numbers: set[str]) -> bool:
    if any(n not in numbers for n in _NUMBER.findall(sentence)):
        return False
    content = words(sentence)
    if len(content) < MIN_CLAIM_WORDS:
        return True
    found = sum(1 for w in content if w in vocabulary)
    return found / len(content) >= MIN_SHARE


def own_words(answer: Answer, passages: Sequence[Passage]) -> str:
    """The draft's sentences that are not quoted word for word from the passages it cites:
    what the output rules' similarity conditions compare. Our own documentation, quoted,
    is approved text (and the longest part of a draft: embedding it cost most of a
    worker's CPU); a promise or a leak is in what the responder wrote around it. The
    text conditions still read the whole draft."""
    ids = set(answer.passage_ids)
    cited = [" ".join(p.text.split()) for p in passages if p.id in ids]
    own = [
        s for s in split_sentences(answer.text) if not any(" ".join(s.split()) in c for c in cited)
    ]
    return " ".join(own)
