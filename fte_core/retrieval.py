"""Queries for the knowledge base: the customer's words first, then a reformulation.

A message is first split into the questions it asks (`split_questions`): "How do I export
to CSV? Also, can I import from Jira?" is two questions, each retrieved, answered or
handed over on its own. Greetings and sign-offs are dropped before embedding ("Dear
support, ... Kind regards, Tom" says nothing about the question and blurs its vector).
The second attempt for a question nothing answered keeps only its content words, so that
a long, chatty message still finds the section a short question would; a third mends
their typos against the documentation's words (fte_core.spelling).

A later question that finds nothing and points back ("... and can I change my mind
afterwards?") is searched again after the question before it.

`retrieve` does all of it for the pipeline, embedding every query of the message in one
call (the vectors travel with the result, computed once).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator, Sequence

import msgspec

from fte_core.formatting import split_sentences
from fte_core.models import Passage
from fte_core.ports import KnowledgeBase, Question
from fte_core.spelling import Speller
from fte_core.text import normalize

MAX_QUERY_CHARS = 1000

_STOPWORDS = frozenset(
    [
        "a",
        "about",
        "above",
        "after",
        "again",
        "all",
        "am",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "because",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "but",
        "by",
        "can",
        "cant",
        "could",
        "did",
        "do",
        "does",
        "doing",
        "dont",
        "down",
        "during",
        "each",
        "few",
        "for",
        "from",
        "further",
        "had",
        "has",
        "have",
        "having",
        "he",
        "her",
        "here",
        "hers",
        "him",
        "his",
        "how",
        "i",
        "if",
        "im",
        "in",
        "into",
        "is",
        "it",
        "its",
        "itself",
        "ive",
        "just",
        "let",
        "lets",
        "me",
        "more",
        "most",
        "my",
        "myself",
        "no",
        "nor",
        "not",
        "now",
        "of",
        "off",
        "on",
        "once",
        "only",
        "or",
        "other",
        "our",
        "ours",
        "out",
        "over",
        "own",
        "please",
        "pls",
        "plz",
        "same",
        "she",
        "should",
        "so",
        "some",
        "such",
        "than",
        "thank",
        "thanks",
        "thx",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "to",
        "too",
        "u",
        "under",
        "until",
        "up",
        "very",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "yours",
        "hi",
        "hello",
        "hey",
        "dear",
        "team",
        "support",
        "regards",
        "kind",
        "best",
        "cheers",
        "sincerely",
        "tasklane",
        "help",
        "need",
        "want",
        "wanted",
        "trying",
        "try",
        "tried",
        "get",
        "got",
        "know",
        "able",
        "also",
        "still",
        "really",
        "anyone",
        "someone",
        "something",
        "way",
        "hope",
        "ok",
        "okay",
        "yes",
        # chat filler that says nothing about the topic
        "lol",
        "oops",
        "wont",
        "doesnt",
        "didnt",
        "isnt",
        "arent",
        "sorry",
        "asap",
        "urgent",
        "guys",
        "stuff",
        "thing",
        "things",
        "colleague",
        "colleagues",
        "yesterday",
        "today",
        "morning",
    ]
)
_WORD = re.compile(r"[a-z0-9][a-z0-9'+#.-]*[a-z0-9]|[a-z0-9]")
_QUERY_WORD = re.compile(r"\w")


# The product's own name: every question to its support is about it, so as a search word
# it only pulls in the sections whose titles and phrasings carry it ("Signing up for a
# Tasklane account", "start using tasklane"): in full text and in the embedded question
# alike, where it made off-topic questions naming the product ("a Tasklane podcast?",
# "can Tasklane track hours for payroll") look like sign-up questions.
_BRAND = re.compile(r"\btasklane(?:'?s)?\b", re.I)


def lexical_query(query: str) -> str:
    """The query searched (the full-text half, its coverage and the embedded question):
    the brand name left out, unless nothing else is left."""
    stripped = " ".join(_BRAND.sub(" ", query).split())
    return stripped if _QUERY_WORD.search(stripped) else query


def first_query(text: str, subject: str | None) -> str:
    query = f"{subject}\n{text}" if subject else text
    return query[:MAX_QUERY_CHARS]


def reformulate(text: str, subject: str | None) -> str:
    """Content words only, de-duplicated, in order of first appearance."""
    words = _WORD.findall(normalize(first_query(text, subject)))
    content = [w.strip("'.") for w in words if w not in _STOPWORDS and len(w) > 1]
    return " ".join(dict.fromkeys(content))[:MAX_QUERY_CHARS]


MAX_QUESTIONS = 3
MIN_QUESTION_WORDS = 2
_GREETING = re.compile(
    r"^\s*(?:hi|hello|hey|hiya|dear|good (?:morning|afternoon|evening)|greetings)\b[^\n]{0,40}$",
    re.I,
)
_SIGN_OFF = re.compile(
    r"^\s*(?:thanks?|thank you|thx|many thanks|regards|kind regards|best|best regards|"
    r"cheers|sincerely|all the best|br)\b[^\n?]{0,30}$",
    re.I,
)
_ASKS = re.compile(
    r"^(?:how|can|could|is|are|do|does|did|where|what|why|when|which|who|will|would|should)\b",
    re.I,
)
_AFTER_QUESTION = re.compile(r"(?<=\?)\s+")  # "...to csv? also can i..." is two units
_LIST_ITEM = re.compile(r"^\s*(?:\d+[.)]|[-*•])\s+")
_INLINE_ITEM = re.compile(r"\s+(?=\(?\d\)\s)")  # "1) invite a guest 2) remove someone"
_LEAD_IN = re.compile(
    r"^(?:and|also|plus|oh and|and also|another question|another thing|second(?:ly)?|"
    r"one more thing|btw|by the way)\b[,:]?\s*",
    re.I,
)
# A unit that opens with a lead-in starts a question of its own ("Also I want to ...").
_NEW_TOPIC = re.compile(
    r"^(?:also|and also|plus|oh and|another question|another thing|second(?:ly)?|"
    r"one more thing|btw|by the way)\b",
    re.I,
)
# "..., and how do I ..." / "... also can we ...": a second question inside one sentence.
# A spaced "+" or "&" joins two requests whatever follows ("mute one task + archive my
# inbox"): chat shorthand for "and also"; both halves must still say enough.
_SUBJECT = r"(?:i|we|you|it|there|my|our|the|a|an|they|this|that|someone|anyone)"
_JOINED_QUESTION = re.compile(
    r",?\s+(?:(?:and\s+also|and|also|plus)\s+(?=(?:how|where|what|why|when|which)\b|"
    rf"(?:can|could|do|does|is|are|should|will|would)\s+{_SUBJECT}\b)|[+&]\s+)",
    re.I,
)


def clean_message(text: str) -> str:
    """The message without greeting and sign-off lines (and the name under a sign-off)."""
    lines = [line for line in text.splitlines() if line.strip()]
    while lines and _GREETING.match(lines[0]):
        lines.pop(0)
    for i in range(len(lines) - 1, max(-1, len(lines) - 4), -1):
        if _SIGN_OFF.match(lines[i]):
            del lines[i:]
            break
    return "\n".join(lines).strip() or text.strip()


def _content_words(text: str) -> list[str]:
    return [w for w in _WORD.findall(normalize(text)) if w not in _STOPWORDS and len(w) > 1]


# "sign up", "log in", "set up": the particle is a stopword, yet it is half of what the
# customer asks ("How do I sign up?" is a question of its own, not "any idea?").
_PHRASAL = re.compile(r"\b(?:sign|log|set|back|check|opt|turn)\s+(?:up|in|out|on|off)\b")


def _says_enough(text: str) -> bool:
    """Enough content to be searched as a question of its own."""
    words = len(_content_words(text)) + len(_PHRASAL.findall(normalize(text)))
    return words >= MIN_QUESTION_WORDS


class _Unit(msgspec.Struct, frozen=True):
    text: str
    opens: bool  # starts a question of its own: a list item, or "Also, ..." with content


def _units(text: str) -> list[_Unit]:
    """List items and sentences, in order; a sentence joining two questions ("how do I
    mute a project and can I stop the digest") is two units, the second one a question."""
    units: list[_Unit] = []
    for line in text.splitlines():
        listed = bool(_LIST_ITEM.match(line))
        for item in _INLINE_ITEM.split(_LIST_ITEM.sub("", line)):
            item_listed = listed or bool(_LIST_ITEM.match(item))
            first = True
            for sentence in split_sentences(_LIST_ITEM.sub("", item)):
                for part in _AFTER_QUESTION.split(sentence):
                    for joined, piece in enumerate(_joined_questions(part)):
                        if piece.strip():
                            # a joined request opens its own question, asking or not
                            opens = (item_listed and first) or joined > 0 or _opens_topic(piece)
                            units.append(_Unit(piece, opens))
                            first = False
    return units


def _opens_topic(unit: str) -> bool:
    return bool(_NEW_TOPIC.match(unit)) and _says_enough(unit)


def _joined_questions(sentence: str) -> list[str]:
    """A sentence cut before each joined question it asks, when both halves say enough
    on their own; the first half then closes its question (it ends in "?")."""
    pieces = _JOINED_QUESTION.split(sentence)
    if len(pieces) == 1 or not all(_says_enough(p) for p in pieces):
        return [sentence]
    return [f"{p.rstrip(' ,.?')}?" for p in pieces[:-1]] + [pieces[-1]]


def split_questions(text: str, subject: str | None = None) -> list[str]:
    """The questions a message asks, each with the statements before it as context.

    A unit ending in "?" closes a question; statements after the last one join it, unless
    they ask something themselves ("...to csv? also can i import from jira"). A
    question with fewer than MIN_QUESTION_WORDS content words ("any idea?") joins the one
    before it. One question (the usual case) comes back as the whole cleaned message; the
    subject is prefixed to the first question.
    """
    body = clean_message(text)
    groups: list[list[str]] = [[]]
    opened = False  # the last group was started by a list item or a lead-in
    for unit in _units(body):
        if groups[-1] and unit.opens:
            groups.append([])
        if not groups[-1]:
            opened = unit.opens
        groups[-1].append(unit.text)
        if unit.text.rstrip().endswith("?"):
            groups.append([])
    if not groups[-1]:
        groups.pop()
    elif len(groups) > 1 and not opened and not _ASKS.match(_LEAD_IN.sub("", groups[-1][0])):
        groups[-2].extend(groups.pop())
    questions: list[str] = []
    for group in groups:
        joined = " ".join(group)
        if questions and not _says_enough(joined):
            questions[-1] = f"{questions[-1]} {joined}"
        else:
            questions.append(joined)
    if len(questions) > 1 and not _says_enough(questions[0]):
        questions[:2] = [f"{questions[0]} {questions[1]}"]  # "hey so 1) invite a guest 2) ..."
    if len(questions) > MAX_QUESTIONS or len(questions) <= 1:
        questions = [body]
    questions = [_LEAD_IN.sub("", q).strip() or q for q in questions]
    questions[0] = first_query(questions[0], subject)
    return [q[:MAX_QUERY_CHARS] for q in questions]


class Retrieval(msgspec.Struct, frozen=True, kw_only=True):
    questions: tuple[Question, ...]
    embeddings: tuple[tuple[float, ...], ...]  # one per question, as first searched
    attempts: int

    @property
    def passages(self) -> list[Passage]:
        """Every question's passages, first question first, each passage once."""
        seen: dict[str, Passage] = {}
        for question in self.questions:
            for passage in question.passages:
                seen.setdefault(passage.id, passage)
        return list(seen.values())

    @property
    def unanswered(self) -> tuple[Question, ...]:
        return tuple(q for q in self.questions if not q.passages)


def questions_of(text: str, subject: str | None) -> list[str]:
    """The questions of a message that retrieval searches, each on its own."""
    return [q for q in split_questions(text, subject) if _QUERY_WORD.search(q)]


def embedded_text(question: str) -> str:
    """A question as it is embedded: by the knowledge base for search and by the rules'
    similarity conditions, so one vector serves both. Normalised (look-alike letters and
    case folded, which an uncased model ignores anyway) and without the brand name, as
    `KnowledgeBase.embed_queries` reads it."""
    return lexical_query(normalize(question))


async def retrieve(
    kb: KnowledgeBase,
    text: str,
    subject: str | None,
    limit: int,
    speller: Speller | None = None,
    *,
    questions: Sequence[str] | None = None,
    vectors: Sequence[Sequence[float]] | None = None,
) -> Retrieval:
    """Each question searched with its vector (all embedded in one call, or `vectors`,
    one per question, when the caller embedded them already); `questions` are
    `questions_of(text, subject)` when the caller split the message already. A question
    nothing answered is searched again by its content words, then with its typos mended
    (`speller`, fte_core.spelling). Questions answered from the same section are one
    question."""
    questions = list(questions) if questions is not None else questions_of(text, subject)
    if not questions:
        return Retrieval(questions=(), embeddings=(), attempts=0)
    if vectors is None or len(vectors) != len(questions):
        vectors = await kb.embed_queries([embedded_text(q) for q in questions])

    async def answer(index: int, vector: Sequence[float]) -> tuple[Question, int]:
        question = questions[index]
        passages = await kb.search(question, limit, embedding=vector or None)
        attempts = 1
        for retry in _retries(questions, index, speller):  # each worked out when needed
            if passages:
                break
            passages = await kb.search(retry, limit)
            attempts += 1
        return Question(text=question, passages=tuple(passages)), attempts

    # the questions are independent: their searches wait on the store side by side
    found = await asyncio.gather(*(answer(i, v) for i, v in enumerate(vectors)))
    return Retrieval(
        questions=_merge_same_section([q for q, _ in found]),
        embeddings=tuple(tuple(v) for v in vectors),
        attempts=sum(n for _, n in found),
    )


# Words by which a follow-up points back at the question before it.
_BACK_REFERENCE = re.compile(
    r"\b(?:it|its|they|them|their|those|these|one|ones|afterwards|later|then|instead)\b", re.I
)


def _leans_back(question: str) -> bool:
    """A follow-up that points back ("can I undo it afterwards?"). Few words are not
    enough: "And what is the capital of Mongolia?" is short, and a question of its own."""
    return bool(_BACK_REFERENCE.search(question))


def _retries(questions: Sequence[str], index: int, speller: Speller | None) -> Iterator[str]:
    """What to search when a question found nothing, each worked out only if the one
    before found nothing too: a later question leaning on the one before it with that one
    ("How do I close my account, and can I change my mind afterwards?"; found in the same
    section, the two merge), then its content words, then those words with their typos
    mended ("chnage the langauge")."""
    question = questions[index]
    if index and _leans_back(question):
        yield f"{questions[index - 1]} {question}"
    words = reformulate(question, None)
    if words.strip() and words != question:
        yield words
    mended = speller.mend(words) if speller and words.strip() else words
    if mended != words:
        yield mended


def _merge_same_section(questions: Sequence[Question]) -> tuple[Question, ...]:
    merged: list[Question] = []
    for question in questions:
        top = question.passages[0].section if question.passages else None
        twin = next((m for m in merged if m.passages and m.passages[0].section == top), None)
        if twin is None:
            merged.append(question)
            continue
        index = merged.index(twin)
        ids = {p.id for p in twin.passages}
        extra = tuple(p for p in question.passages if p.id not in ids)
        merged[index] = Question(
            text=f"{twin.text} {question.text}", passages=twin.passages + extra
        )
    return tuple(merged)


def partial_handover(retrieval: Retrieval | None) -> bool:
    """Some questions of the message were answered and at least one was not."""
    return retrieval is not None and 0 < len(retrieval.unanswered) < len(retrieval.questions)
