"""The honest resolution rate: an answered conversation counts as resolved only when the
customer confirms it worked, or does not come back on any channel within 72 hours.

The naive rate ("answered without hand-over") flatters the agent: a customer whose answer
did not help writes again, often on another channel, in a new conversation. Here the unit
is the conversation, judged from its last agent answer before the period's end:

- handed over: a rule escalated it, a person held or answered it (not resolved by the agent);
- confirmed: the customer's next message, within the window, is a confirmation;
- re-contacted: the customer's next message, within the window, on any channel, is anything
  else (it counts against the answer, whatever the conversation it lands in);
- quiet: no message from the customer within the window, and the window has passed;
- pending: no message yet and the window is still open (left out of the honest rate, and
  reported, so a fresh period never looks better than it is).

A confirmation message itself ("thanks, that worked") is not a new question: whatever the
pipeline did with it (an answer, a no-match hand-over) does not change the conversation's
outcome.
"""

from __future__ import annotations

import enum
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

import msgspec

from fte_core.models import Author, Channel, Direction, StoredMessage
from fte_core.ports import CustomerMessage
from fte_core.text import normalize

RECONTACT_WINDOW = timedelta(hours=72)
MAX_CONFIRMATION_WORDS = 25

_CONFIRM = re.compile(
    r"\b(?:thanks?|thank you|thx|ty|cheers|many thanks|much appreciated|appreciate it|"
    r"(?:that|it|this) (?:worked|works|did it|helped|fixed it|solved it)|works now|"
    r"working now|fixed|solved|resolved|sorted|perfect|great|awesome|got it|all good|"
    r"problem solved|all set|gracias|merci|danke|obrigad[oa])\b"
)
# a thanks that goes on to say it did not work, or asks something new, is no confirmation
_DOUBT = re.compile(
    r"\?|n't\b|\b(?:not|no|never|still|but|however|again|yet|although|though|try|"
    r"trying|will check|let you know|same (?:error|problem|issue)|doesnt|didnt|dont|cant|"
    r"wont|isnt|wasnt|broken|fails?|failed|error)\b"
)


def is_confirmation(text: str) -> bool:
    """A short message thanking or saying the answer worked, with no doubt or new question."""
    plain = normalize(text).replace("’", "'")
    if len(plain.split()) > MAX_CONFIRMATION_WORDS:
        return False
    return bool(_CONFIRM.search(plain)) and not _DOUBT.search(plain)


class Outcome(enum.StrEnum):
    HANDED_OVER = "handed_over"
    CONFIRMED = "confirmed"
    RECONTACTED = "recontacted"
    QUIET = "quiet"
    PENDING = "pending"


RESOLVED = frozenset({Outcome.CONFIRMED, Outcome.QUIET})


class ConversationOutcome(msgspec.Struct, frozen=True, kw_only=True):
    conversation_id: str
    customer_id: str
    channel: Channel  # where the last agent answer (or the hand-over) went
    outcome: Outcome
    answered_at: datetime | None = None  # the last agent answer judged
    next_contact_at: datetime | None = None  # the customer's next message, when one came


class ResolutionFigures(msgspec.Struct, frozen=True, kw_only=True):
    conversations: int
    answered: int  # without hand-over: the naive rate's numerator
    handed_over: int
    confirmed: int
    quiet: int
    recontacted: int
    pending: int
    naive_rate: float | None  # answered / conversations
    honest_rate: float | None  # (confirmed + quiet) / (conversations - pending)


class _Decision(msgspec.Struct, frozen=True):
    at: datetime
    channel: Channel
    action: str  # answer | escalate | hold | human


def _decisions(
    messages: Sequence[CustomerMessage], confirmations: set[str]
) -> dict[str, list[_Decision]]:
    """Per conversation, what the agent or a person did, oldest first, leaving out the
    agent's reactions to confirmations."""
    found: dict[str, list[_Decision]] = defaultdict(list)
    for item in messages:
        m = item.message
        if m.author is Author.HUMAN:
            found[m.conversation_id].append(_Decision(m.created_at, m.channel, "human"))
            continue
        record = m.record
        if record is None or record.message_id in confirmations:
            continue
        if m.direction is Direction.INBOUND and record.action != "hold":
            continue  # only holds are recorded on the inbound message
        found[m.conversation_id].append(_Decision(m.created_at, m.channel, record.action))
    return found


def outcomes(
    messages: Sequence[CustomerMessage],
    since: datetime,
    until: datetime,
    now: datetime,
    window: timedelta = RECONTACT_WINDOW,
) -> list[ConversationOutcome]:
    """The outcome of every conversation decided in [since, until). `messages` must run
    from `since` to `now` (re-contacts after the period count)."""
    inbound = [i for i in messages if i.message.direction is Direction.INBOUND]
    confirmations = {i.message.id for i in inbound if is_confirmation(i.message.text)}
    by_customer: dict[str, list[StoredMessage]] = defaultdict(list)
    for item in inbound:
        by_customer[item.customer_id].append(item.message)
    customer_of = {i.message.conversation_id: i.customer_id for i in messages}
    result = []
    for conversation, decisions in _decisions(messages, confirmations).items():
        before_end = [d for d in decisions if d.at < until]
        if not any(d.at >= since for d in before_end):
            continue
        customer = customer_of[conversation]
        if any(d.action != "answer" for d in before_end):
            first = next(d for d in before_end if d.at >= since)
            result.append(
                ConversationOutcome(
                    conversation_id=conversation,
                    customer_id=customer,
                    channel=first.channel,
                    outcome=Outcome.HANDED_OVER,
                )
            )
            continue
        last = before_end[-1]
        result.append(
            _judge(conversation, customer, last, by_customer[customer], confirmations, now, window)
        )
    return result


def _judge(
    conversation: str,
    customer: str,
    answer: _Decision,
    customer_messages: Iterable[StoredMessage],
    confirmations: set[str],
    now: datetime,
    window: timedelta,
) -> ConversationOutcome:
    after = [m for m in customer_messages if m.created_at > answer.at]
    following = min(after, key=lambda m: m.created_at, default=None)
    outcome = Outcome.QUIET if now >= answer.at + window else Outcome.PENDING
    if following is not None and following.created_at <= answer.at + window:
        confirmed = following.id in confirmations
        outcome = Outcome.CONFIRMED if confirmed else Outcome.RECONTACTED
    return ConversationOutcome(
        conversation_id=conversation,
        customer_id=customer,
        channel=answer.channel,
        outcome=outcome,
        answered_at=answer.at,
        next_contact_at=following.created_at if following is not None else None,
    )


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def figures(found: Iterable[ConversationOutcome]) -> ResolutionFigures:
    counts = {o: 0 for o in Outcome}
    for item in found:
        counts[item.outcome] += 1
    total = sum(counts.values())
    resolved = counts[Outcome.CONFIRMED] + counts[Outcome.QUIET]
    return ResolutionFigures(
        conversations=total,
        answered=total - counts[Outcome.HANDED_OVER],
        handed_over=counts[Outcome.HANDED_OVER],
        confirmed=counts[Outcome.CONFIRMED],
        quiet=counts[Outcome.QUIET],
        recontacted=counts[Outcome.RECONTACTED],
        pending=counts[Outcome.PENDING],
        naive_rate=_rate(total - counts[Outcome.HANDED_OVER], total),
        honest_rate=_rate(resolved, total - counts[Outcome.PENDING]),
    )


def by_channel(found: Iterable[ConversationOutcome]) -> dict[Channel, ResolutionFigures]:
    items = list(found)
    return {c: figures(o for o in items if o.channel is c) for c in Channel}
