"""The offline responder: an extractive answer from knowledge-base passages, no model.

It is NOT a language model and does not understand the question. It takes the passage
retrieval ranked first (another only when it shares clearly more of the question's
words), and from it the run of consecutive sentences that shares the most words with the
question, preferring a run that holds the sentence retrieval found closest to the
question (`Passage.focus`), not the article's opening lines. It keeps them verbatim and
in the documentation's order (so steps stay steps), names the help article section they
come from and cites the passage ids. When retrieval's ranker finds a second section
nearly as likely (`Passage.share`), that section's closest sentences follow ("If you
meant ..."): quoting both beats a confident answer to the wrong question. A message
asking several questions gets one such answer per question, and a line saying a person
will take the question no passage answers. It never writes a
fact of its own: every sentence of substance is copied from the documentation, and
sentences that mention money, percentages or promises are skipped even there.
Deterministic: the same request always gives the same answer.

It is what answers when no LLM is configured (SPEC 2, embedded defaults), and the
fallback when the LLM fails.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

import msgspec

from fte_core.embedding import words as _stemmed_words
from fte_core.formatting import normalize_text, split_sentences
from fte_core.models import Channel, Passage
from fte_core.ports import Answer, AnswerRequest

NAME = "offline"
SUBJECT_WEIGHT = 0.5
# Retrieval ranks with idf, titles, meaning and the customers' phrasings, which this word
# count lacks: its first passage gets about four question words of advantage, decaying as
# 1/(rank + 1); another passage wins only by clearly sharing more of the question.
RANK_BONUS = 6.0
WHATSAPP_CHARS = 300
MIN_EXTRA_WORDS = 2
_MAX_SENTENCES = {Channel.WHATSAPP: 3, Channel.EMAIL: 5, Channel.WEB_FORM: 4}

# Money, percentages and promises: never repeated, even from the documentation.
_UNSAFE = re.compile(
    r"[$€£¥₹]|\b(?:usd|eur|gbp|dollars?|euros?)\b|\d\s*%|\bper cent\b|\bpercent\b"
    r"|\brefund|\breimburs|\bdiscount|\bcoupon|\bcompensat|\bguarantee|\bpromise",
    re.I,
)
_MARKDOWN = re.compile(r"\*\*|__|`|^#+\s*", re.M)
_LIST_MARK = re.compile(r"^(?:[-*•]|\d+[.)])\s+")

NO_ANSWER = (
    "I could not find this in our help articles, so a member of our team will need to look at it."
)
PARTIAL = "Your other question needs a member of our team, who will follow up on this ticket."
FOCUS_BONUS = 1.5
IDLE_PENALTY = 0.6
# A second section is quoted too when the ranker gives it at least this share of the
# first's probability (a score margin under 0.5: e^-0.5). On the 498 single-question
# tuning and sample questions that is 6 % of answers, and the ranker's first section was
# wrong in 15 of the 29 (its second right in 12).
CLOSE_SHARE = 0.6
ALT_SENTENCES = {Channel.WHATSAPP: 1, Channel.EMAIL: 2, Channel.WEB_FORM: 2}


@lru_cache(maxsize=32_768)
def words(text: str) -> tuple[str, ...]:
    """The shared stemmer's words, with a final "e" dropped so that "expires" (stemmed
    "expire") and "expired" (stemmed "expir") meet. Cached: the same documentation
    sentences are scored for every question."""
    return tuple(w[:-1] if len(w) > 3 and w.endswith("e") else w for w in _stemmed_words(text))


class _Pick(msgspec.Struct, frozen=True, kw_only=True):
    passage: Passage
    sentences: tuple[str, ...]
    score: float


class OfflineResponder:
    """ports.Responder that quotes the documentation (see the module docstring)."""

    @property
    def name(self) -> str:
        return NAME

    async def answer(self, request: AnswerRequest) -> Answer:
        return compose(request)


def compose(request: AnswerRequest) -> Answer:
    if len(request.questions) <= 1:
        return _compose_one(request.question, request.subject, request.passages, request.channel)
    parts: list[Answer] = []
    for question in request.questions:
        if question.passages:
            parts.append(_compose_one(question.text, None, question.passages, request.channel))
    answered = [a for a in parts if a.passage_ids]
    if not answered:
        return Answer(text=NO_ANSWER, passage_ids=(), responder=NAME)
    texts = [a.text for a in answered]
    if len(answered) < len(request.questions):
        texts.append(PARTIAL)
    ids = tuple(dict.fromkeys(i for a in answered for i in a.passage_ids))
    return Answer(text="\n\n".join(texts), passage_ids=ids, responder=NAME)


def _compose_one(
    question: str, subject: str | None, passages: Sequence[Passage], channel: Channel
) -> Answer:
    weights = _query_weights(question, subject)
    limit = _MAX_SENTENCES[channel] if channel is not Channel.WHATSAPP else 3
    picks = [_best_window(p, rank, weights, limit) for rank, p in enumerate(passages)]
    usable = [p for p in picks if p.sentences]
    if not usable:
        return Answer(text=NO_ANSWER, passage_ids=(), responder=NAME)
    best = max(usable, key=lambda p: p.score)  # max keeps the first of equal scores
    second = _close_second(best, usable)
    if second is not None:
        second = _best_window(second.passage, 1, weights, ALT_SENTENCES[channel])
    if channel is Channel.WHATSAPP:
        chosen = (best,) if second is None else (best, second)
        return _answer(_whatsapp_text(chosen, weights), chosen)
    extra = second or _complement(best, usable, weights)
    chosen = (best,) if extra is None else (best, extra)
    return _answer(_long_text(chosen, alternative=second is not None), chosen)


def _answer(text: str, picks: Sequence[_Pick]) -> Answer:
    return Answer(text=text, passage_ids=tuple(p.passage.id for p in picks), responder=NAME)


def _query_weights(question: str, subject: str | None) -> dict[str, float]:
    weights = dict.fromkeys(words(subject or ""), SUBJECT_WEIGHT)
    weights.update(dict.fromkeys(words(question), 1.0))
    return weights


@lru_cache(maxsize=4_096)
def _sentences(text: str) -> tuple[str, ...]:
    """Documentation sentences, markdown removed, fragments after "Forgot password?"-style
    labels glued back to their sentence, unsafe sentences dropped. Cached per passage."""
    merged: list[str] = []
    for raw in split_sentences(normalize_text(_MARKDOWN.sub("", text))):
        sentence = _LIST_MARK.sub("", raw)
        if merged and sentence[:1].islower():
            merged[-1] = f"{merged[-1]} {sentence}"
        elif sentence:
            merged.append(sentence)
    return tuple(s for s in merged if not _UNSAFE.search(s))


def _coverage(sentences: Sequence[str], weights: dict[str, float]) -> float:
    present = {w for s in sentences for w in words(s)}
    return sum(weight for term, weight in weights.items() if term in present)


def _best_window(passage: Passage, rank: int, weights: dict[str, float], size: int) -> _Pick:
    """The run of up to `size` consecutive sentences covering the most query terms;
    earliest first among equals, so an answer starts where the procedure starts. When
    retrieval named the closest sentence (`focus`), the run holds it and is as short as
    the question allows (see _focused)."""
    sentences = _sentences(passage.text)
    focus = _focus_index(sentences, passage.focus)
    if focus is not None:
        best, best_score = _focused(sentences, focus, weights, size)
    else:
        best, best_score = (), -1.0
        for start in range(max(1, len(sentences) - size + 1)):
            window = tuple(sentences[start : start + size])
            score = _coverage(window, weights)
            if score > best_score:
                best, best_score = window, score
    bonus = RANK_BONUS / (rank + 1)
    section_score = _coverage([passage.section], weights) * 0.5
    return _Pick(passage=passage, sentences=best, score=best_score + section_score + bonus)


def _focused(
    sentences: Sequence[str], focus: int, weights: dict[str, float], size: int
) -> tuple[tuple[str, ...], float]:
    """Runs of up to `size` sentences: coverage, FOCUS_BONUS when the run holds the
    focus sentence, and a penalty of IDLE_PENALTY for each sentence sharing no word with
    the question (one right after a sentence that does excepted: it usually finishes the
    step). The focus is evidence, not a constraint: retrieval's closest sentence by
    meaning is often the section's general one ("Two-factor authentication asks for a
    code"), while the sentence sharing the question's own words states the condition or
    limit asked about ('If the code is rejected with "Invalid code"').'"""
    best: tuple[str, ...] = ()
    best_score = -1e9
    shares = [bool(_coverage([s], weights)) for s in sentences]
    for start in range(len(sentences)):
        for end in range(start + 1, min(len(sentences), start + size) + 1):
            window = sentences[start:end]
            idle = sum(
                1
                for i in range(start, end)
                if not shares[i] and i != focus and not (i > start and shares[i - 1])
            )
            score = _coverage(window, weights) - IDLE_PENALTY * idle
            score += FOCUS_BONUS if start <= focus < end else 0.0
            score -= 0.01 * (end - start)  # the shorter of equal runs
            if score > best_score + 1e-9:
                best, best_score = tuple(window), score
    return best, best_score


def _focus_index(sentences: Sequence[str], focus: str) -> int | None:
    """Which of the cleaned sentences holds the focus sentence (None: unknown or unsafe)."""
    if not focus:
        return None
    key = normalize_text(_MARKDOWN.sub("", _LIST_MARK.sub("", focus)))[:60]
    return next((i for i, s in enumerate(sentences) if key and key in s), None)


def _complement(best: _Pick, picks: Sequence[_Pick], weights: dict[str, float]) -> _Pick | None:
    """A second passage, only when its best sentences cover at least MIN_EXTRA_WORDS
    question words the first one does not: a single shared word ("team", "project") is
    how an unrelated passage gets appended, and one right passage reads better."""
    covered = {w for s in best.sentences for w in words(s)}
    missing = {t for t, w in weights.items() if t not in covered and w >= 1.0}
    if len(missing) < MIN_EXTRA_WORDS:
        return None
    for pick in picks:
        if pick is best or pick.passage.section == best.passage.section:
            continue
        if len(missing & {w for s in pick.sentences for w in words(s)}) < MIN_EXTRA_WORDS:
            continue
        hits = [s for s in pick.sentences if missing & set(words(s))]
        if hits:
            return _Pick(passage=pick.passage, sentences=(hits[0],), score=pick.score)
    return None


def _close_second(best: _Pick, picks: Sequence[_Pick]) -> _Pick | None:
    """The passage of another section that retrieval's ranker finds nearly as likely as
    the chosen one (share at least CLOSE_SHARE of it): the evidence does not tell the two
    apart, and quoting both beats a confident answer to the wrong question. On the
    tuning questions the ranker's first section was wrong in about half of such cases."""
    top = max(p.passage.share for p in picks if p.passage.section == best.passage.section)
    if top <= 0:
        return None
    others = [p for p in picks if p.passage.section != best.passage.section]
    runner_up = max(others, key=lambda p: p.passage.share, default=None)
    if runner_up is None or runner_up.passage.share < CLOSE_SHARE * top:
        return None
    return runner_up


def _whatsapp_text(picks: Sequence[_Pick], weights: dict[str, float]) -> str:
    """1-3 sentences: while over the preferred length, drop whichever end sentence
    matters less to the question (the later one among equals). A close second article
    (`_close_second`) follows in one sentence, and shares the length."""
    pick = picks[0]
    tail = [f'If you meant "{x.passage.section}": {" ".join(x.sentences)}' for x in picks[1:]]
    budget = WHATSAPP_CHARS - sum(len(t) + 1 for t in tail)
    chosen = list(pick.sentences)
    intro = f'From our help article "{pick.passage.section}":'
    while len(chosen) > 1 and len(intro) + sum(len(s) + 1 for s in chosen) > budget:
        if _coverage(chosen[1:], weights) > _coverage(chosen[:-1], weights):
            chosen.pop(0)
        else:
            chosen.pop()
    return " ".join([intro, *chosen, *tail])


def _long_text(picks: Sequence[_Pick], *, alternative: bool = False) -> str:
    """An intro naming the article, then its sentences as one paragraph, in the
    documentation's order (the docs are prose: numbering them would invent structure).
    A second article is a complement ("From ...") or a close alternative ("If you
    meant ...")."""
    first = picks[0]
    lines = [
        f'Here is what our help article "{first.passage.section}" says:',
        " ".join(first.sentences),
    ]
    lead = "If you meant" if alternative else "From"
    lines.extend(f'{lead} "{x.passage.section}": {" ".join(x.sentences)}' for x in picks[1:])
    return "\n\n".join(lines)
