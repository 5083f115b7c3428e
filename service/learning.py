"""The learning report (`fte learn`): tickets a person resolved that the agent could not
answer, grouped by meaning, each group a candidate knowledge-base article.

A ticket qualifies when a person replied on it, it is resolved or closed, and the agent
could not answer: the knowledge base had no match (`no_kb_match`), the draft was not
grounded (`ungrounded`), or it was handed over for another reason and the person's reply
is something the knowledge base does not cover (a search for it finds nothing). Tickets
handed over only because a rule forbids the agent to answer (pricing, refunds, legal,
account security, prompt injection, another language) are left out: no article would let
the agent answer those.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from html import escape

import msgspec

from fte_core.learning import DEFAULT_SIMILARITY, group, suggest_title
from fte_core.models import Author, Direction, StoredMessage, Ticket, TicketStatus
from fte_core.ports import CrmStore, KnowledgeBase
from fte_core.retrieval import clean_message
from service import charts

KB_GAPS = frozenset({"no_kb_match", "ungrounded"})
RULE_ONLY = frozenset(
    {
        "pricing",
        "refund",
        "legal",
        "account_security",
        "prompt_injection",
        "unsupported_language",
    }
)
EXAMPLES = 3
ANSWERS = 5
MAX_TICKETS = 10_000

Embed = Callable[[Sequence[str]], Awaitable[list[list[float]]]]


class Case(msgspec.Struct, frozen=True, kw_only=True):
    ticket: str
    reasons: tuple[str, ...]
    question: str  # what the customer asked that the agent could not answer
    answers: tuple[str, ...]  # what the people replied
    resolved_at: datetime


class Group(msgspec.Struct, frozen=True, kw_only=True):
    size: int
    suggested_title: str
    examples: tuple[str, ...]  # up to three questions, most typical first
    answers: tuple[str, ...]  # the people's answers, up to five
    tickets: tuple[str, ...]
    reasons: dict[str, int]


class LearningReport(msgspec.Struct, frozen=True, kw_only=True):
    since: datetime
    until: datetime
    generated_at: datetime
    tickets: int
    similarity: float
    groups: tuple[Group, ...]

    @property
    def title(self) -> str:
        return f"Learning report {self.since:%Y-%m-%d} to {self.until:%Y-%m-%d}"


def _reasons(ticket: Ticket, messages: Sequence[StoredMessage]) -> tuple[str, ...]:
    found = [ticket.escalation_reason] if ticket.escalation_reason else []
    for m in messages:
        if m.record is not None:
            found += [*m.record.reasons, m.record.escalation_reason or ""]
    return tuple(dict.fromkeys(r for r in found if r))


def _question(messages: Sequence[StoredMessage], first_human: StoredMessage) -> str:
    """The customer's message the agent handed over (the last one before a person wrote)."""
    escalated = {
        m.record.message_id
        for m in messages
        if m.record is not None and m.record.action in ("escalate", "hold")
    }
    asked = [
        m
        for m in messages
        if m.direction is Direction.INBOUND and m.created_at <= first_human.created_at
    ]
    chosen = [m for m in asked if m.id in escalated] or asked
    return clean_message(chosen[0].text) if chosen else ""


async def _case(store: CrmStore, knowledge: KnowledgeBase, ticket: Ticket) -> Case | None:
    messages = await store.conversation_messages(ticket.conversation_id)
    human = [m for m in messages if m.author is Author.HUMAN]
    if not human:
        return None
    reasons = _reasons(ticket, messages)
    if not reasons or (set(reasons) <= RULE_ONLY):
        return None
    if not KB_GAPS & set(reasons):
        covered = [await knowledge.search(clean_message(m.text), 1) for m in human]
        if all(covered):
            return None  # the knowledge base already says what the person said
    question = _question(messages, human[0])
    if not question:
        return None
    return Case(
        ticket=ticket.number,
        reasons=reasons,
        question=question,
        answers=tuple(m.text for m in human),
        resolved_at=ticket.updated_at,
    )


async def collect(
    store: CrmStore, knowledge: KnowledgeBase, since: datetime, until: datetime
) -> list[Case]:
    tickets = [
        t
        for status in (TicketStatus.RESOLVED, TicketStatus.CLOSED)
        for t in await store.tickets(status=status, limit=MAX_TICKETS)
        if since <= t.updated_at < until
    ]
    cases = [c for t in tickets if (c := await _case(store, knowledge, t)) is not None]
    return sorted(cases, key=lambda c: (c.resolved_at, c.ticket))


def _group(cases: Sequence[Case], members: Sequence[int]) -> Group:
    mine = [cases[i] for i in members]
    reasons: dict[str, int] = {}
    for c in mine:
        for r in c.reasons:
            reasons[r] = reasons.get(r, 0) + 1
    answers = list(dict.fromkeys(a for c in mine for a in c.answers))
    return Group(
        size=len(mine),
        suggested_title=suggest_title([c.question for c in mine]),
        examples=tuple(c.question for c in mine[:EXAMPLES]),
        answers=tuple(answers[:ANSWERS]),
        tickets=tuple(c.ticket for c in mine),
        reasons=reasons,
    )


async def build_report(
    store: CrmStore,
    knowledge: KnowledgeBase,
    embed: Embed,
    since: datetime,
    now: datetime,
    similarity: float = DEFAULT_SIMILARITY,
) -> LearningReport:
    cases = await collect(store, knowledge, since, now)
    vectors = await embed([c.question for c in cases]) if cases else []
    groups = group(vectors, similarity)
    return LearningReport(
        since=since,
        until=now,
        generated_at=now,
        tickets=len(cases),
        similarity=similarity,
        groups=tuple(_group(cases, g.members) for g in groups),
    )


def parse_since(value: str) -> timedelta:
    """`30d`, `12h` or `90m`; a typo names the option."""
    from fte_core.errors import ValidationError

    units = {"d": 86400, "h": 3600, "m": 60}
    number, unit = value[:-1], value[-1:]
    if unit not in units or not number.isdigit() or int(number) <= 0:
        raise ValidationError("--since", f"expected a period like 30d, 12h or 90m, not {value!r}")
    return timedelta(seconds=int(number) * units[unit])


def text(report: LearningReport) -> str:
    lines = [
        f"{report.title}: {report.tickets} tickets a person resolved that the agent could "
        f"not answer, in {len(report.groups)} groups"
    ]
    for n, g in enumerate(report.groups, 1):
        lines.append(f"{n}. {g.suggested_title} ({g.size} tickets: {', '.join(g.tickets)})")
        lines += [f"   asked: {e}" for e in g.examples]
        lines += [f"   answered: {' '.join(a.split())[:200]}" for a in g.answers]
    return "\n".join(lines) + "\n"


def html(report: LearningReport) -> str:
    title = escape(report.title)
    chart = charts.bars(
        "Tickets per suggested article",
        [(g.suggested_title, float(g.size)) for g in report.groups[:10]],
    )
    items = []
    for g in report.groups:
        asked = "".join(f"<li>{escape(e)}</li>" for e in g.examples)
        answered = "".join(f"<li>{escape(a)}</li>" for a in g.answers)
        items.append(
            f"<section><h2>{escape(g.suggested_title)} ({g.size})</h2>"
            f"<p>Tickets: {escape(', '.join(g.tickets))}</p><h3>Asked</h3><ul>{asked}</ul>"
            f"<h3>People answered</h3><ul>{answered}</ul></section>"
        )
    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{title}</title>"
        f"</head><body><main><h1>{title}</h1><p>{report.tickets} tickets in "
        f"{len(report.groups)} groups.</p><figure>{chart}</figure>{''.join(items)}"
        f"</main></body></html>"
    )
