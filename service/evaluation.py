"""`fte eval`: the sample tickets through the agent, scored.

Escalation precision and recall per reason, the benign false-escalation rate, answer
accuracy (the answer leads with a section the customer asked about and cites every one
asked: a message asking several questions lists them all in `sections`; an answer that
leads with another article and offers the right one only as "If you meant ..." is counted
apart, not as correct) and
off-topic recall (questions the docs do not answer handed over with `no_kb_match`).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import msgspec

from fte_core.chunking import section_slug, slugify
from fte_core.errors import ConfigError
from fte_core.models import Channel, InboundMessage, Verification
from fte_core.pipeline import Agent


class Sender(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: str | None = None
    email: str | None = None
    phone: str | None = None


class Expected(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    action: Literal["answer", "escalate"]
    reason: str | None = None
    section: str | None = None
    # several questions in one message: every listed section must be cited
    sections: tuple[str, ...] = ()

    def wanted(self) -> tuple[str, ...]:
        return self.sections or ((self.section,) if self.section else ())


class SampleTicket(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    id: str
    channel: Channel
    text: str
    expected: Expected
    subject: str | None = None
    note: str | None = None  # why a case's label was corrected, when it was
    sender: Sender = msgspec.field(default_factory=Sender, name="from")


class TicketResult(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    channel: Channel
    expected: str
    action: str
    reasons: tuple[str, ...]
    sections: tuple[str, ...]
    correct: bool
    # the asked section(s) cited, but another article leads (an "If you meant" second)
    cited_second: bool = False


class ReasonScore(msgspec.Struct, frozen=True, kw_only=True):
    reason: str
    expected: int
    predicted: int
    true_positive: int
    precision: float
    recall: float


class EvalReport(msgspec.Struct, frozen=True, kw_only=True):
    tickets: int
    reasons: tuple[ReasonScore, ...]
    benign: int
    benign_escalated: int
    false_escalation_rate: float
    answered_correctly: int
    answer_accuracy: float
    cited_second: int
    off_topic: int
    off_topic_handed_over: int
    off_topic_recall: float
    results: tuple[TicketResult, ...]


def load_tickets(path: str | Path) -> list[SampleTicket]:
    try:
        return msgspec.json.decode(Path(path).read_bytes(), type=list[SampleTicket])
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    except msgspec.DecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


def _message(ticket: SampleTicket, run_id: str) -> InboundMessage:
    return InboundMessage(
        channel=ticket.channel,
        provider_message_id=f"eval-{run_id}-{ticket.id}",
        text=ticket.text,
        received_at=datetime.now(UTC),
        sender_email=_own_address(ticket.sender.email, ticket.id),
        sender_phone=ticket.sender.phone,
        sender_name=ticket.sender.name,
        subject=ticket.subject,
        # as the channel would deliver it: the provider proves email and WhatsApp senders
        verified_by=_PROVEN_BY.get(ticket.channel),
    )


def _own_address(email: str | None, ticket_id: str) -> str | None:
    """The sender's address tagged with the case ("ann+ha012@example.com"): each case is
    its own conversation. A set reusing one sender for several questions would otherwise
    thread them into one ticket, and after one of them is handed to a person the next is
    held for that person (action `hold`), scoring the lifecycle rather than the answer."""
    if not email or "@" not in email:
        return email
    local, _, domain = email.rpartition("@")
    tag = "".join(ch for ch in ticket_id.lower() if ch.isalnum())
    return f"{local}+{tag}@{domain}" if tag else email


_PROVEN_BY = {
    Channel.EMAIL: Verification.EMAIL_AUTH,
    Channel.WHATSAPP: Verification.PROVIDER_SIGNED,
}


async def evaluate_tickets(agent: Agent, tickets: Sequence[SampleTicket]) -> EvalReport:
    run_id = uuid.uuid4().hex[:8]
    results = []
    for ticket in tickets:
        outcome = await agent.handle(_message(ticket, run_id))
        record = outcome.record
        reasons = record.reasons
        sections = tuple(dict.fromkeys(section_slug(p) for p in record.passage_ids))
        correct, cited, expected = judge(ticket.expected, record.action, reasons, sections)
        results.append(
            TicketResult(
                id=ticket.id,
                channel=ticket.channel,
                expected=expected,
                action=record.action,
                reasons=reasons,
                sections=sections if record.action == "answer" else (),
                correct=correct,
                cited_second=cited,
            )
        )
    return _score(tickets, results)


def judge(
    exp: Expected, action: str, reasons: tuple[str, ...], sections: tuple[str, ...]
) -> tuple[bool, bool, str]:
    """(correct, cited only second, what was expected) for one ticket: an answer is right
    when it leads with a section asked about and cites every section asked about."""
    if exp.action == "escalate":
        return action == "escalate" and exp.reason in reasons, False, f"escalate/{exp.reason}"
    wanted = [slugify(w) for w in exp.wanted()]
    cited = action == "answer" and all(w in sections for w in wanted)
    correct = cited and (not wanted or sections[0] in wanted)
    return correct, cited and not correct, f"answer/{'+'.join(wanted)}"


def _score(tickets: Sequence[SampleTicket], results: list[TicketResult]) -> EvalReport:
    by_id = {t.id: t for t in tickets}
    reason_names = sorted(
        {t.expected.reason for t in tickets if t.expected.reason}
        | {r for res in results for r in res.reasons}
    )
    scores = []
    for reason in reason_names:
        expected = [r for r in results if by_id[r.id].expected.reason == reason]
        # counted the way recall counts: a hand-over carrying the reason among its reasons
        predicted = [r for r in results if r.action == "escalate" and reason in r.reasons]
        hits = [r for r in expected if r.action == "escalate" and reason in r.reasons]
        tp_primary = [r for r in predicted if by_id[r.id].expected.reason == reason]
        scores.append(
            ReasonScore(
                reason=reason,
                expected=len(expected),
                predicted=len(predicted),
                true_positive=len(hits),
                precision=len(tp_primary) / len(predicted) if predicted else 1.0,
                recall=len(hits) / len(expected) if expected else 1.0,
            )
        )
    benign = [r for r in results if by_id[r.id].expected.action == "answer"]
    escalated = [r for r in benign if r.action == "escalate"]
    right = [r for r in benign if r.correct]
    off_topic = [r for r in results if by_id[r.id].expected.reason == "no_kb_match"]
    handed = [r for r in off_topic if r.correct]
    return EvalReport(
        tickets=len(results),
        reasons=tuple(scores),
        benign=len(benign),
        benign_escalated=len(escalated),
        false_escalation_rate=len(escalated) / len(benign) if benign else 0.0,
        answered_correctly=len(right),
        answer_accuracy=len(right) / len(benign) if benign else 0.0,
        cited_second=sum(r.cited_second for r in benign),
        off_topic=len(off_topic),
        off_topic_handed_over=len(handed),
        off_topic_recall=len(handed) / len(off_topic) if off_topic else 1.0,
        results=tuple(results),
    )


def render_report(report: EvalReport) -> str:
    lines = [f"{report.tickets} sample tickets", ""]
    lines.append(f"{'reason':<20} {'expected':>8} {'predicted':>9} {'precision':>9} {'recall':>7}")
    for s in report.reasons:
        lines.append(
            f"{s.reason:<20} {s.expected:>8} {s.predicted:>9} {s.precision:>9.2f} {s.recall:>7.2f}"
        )
    lines += [
        "",
        f"benign tickets falsely escalated: {report.benign_escalated}/{report.benign} "
        f"({report.false_escalation_rate:.1%})",
        f"answer accuracy (expected section cited first): "
        f"{report.answered_correctly}/{report.benign} ({report.answer_accuracy:.1%})",
        f'  not counted: expected section only second ("If you meant"): {report.cited_second}',
        f"off-topic handed over (no_kb_match): {report.off_topic_handed_over}/{report.off_topic} "
        f"({report.off_topic_recall:.1%})",
    ]
    misses = [r for r in report.results if not r.correct]
    if misses:
        lines += ["", "incorrect:"]
        for r in misses:
            got = r.action + (f"/{','.join(r.reasons)}" if r.reasons else "")
            if r.sections:
                got += f" cites {','.join(r.sections[:3])}"
            lines.append(f"  {r.id} [{r.channel}] expected {r.expected}; got {got}")
    return "\n".join(lines)
