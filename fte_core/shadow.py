"""Shadow evaluation of a rule change: stored traffic replayed through the active and the
proposed rule sets side by side, before the change goes live.

Read-only by construction: the store is only read (`messages_since`, `inbound_message`,
`get_conversation`), both engines are pure functions of the text, and nothing is
published. Every difference is reported, not only the action: a message escalated under
both sets for another reason, or given another priority or tag, is a change too, so
"zero changes" means the two sets decide every replayed message identically.

What is replayed, as the pipeline saw it: input stage, every customer message (subject
and whole body, features computed once, as in the pipeline); output stage, every stored
agent reply the output rules judged at the time (the blocked draft where one was
blocked, the reply as sent otherwise).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import msgspec

from fte_core.models import Author, Channel, Decision, Direction, Priority
from fte_core.policy.engine import MessageFeatures, PolicyEngine, features
from fte_core.policy.evidence import evidence
from fte_core.policy.loader import RuleSet
from fte_core.ports import CrmStore

Stage = Literal["input", "output"]
Kind = Literal["newly_escalated", "newly_blocked", "newly_allowed", "reasons_changed", "other"]
TeamOf = Callable[[str | None], str]
EXCERPT = 240


@dataclass(frozen=True, slots=True)
class Sample:
    """One stored text to replay."""

    stage: Stage
    message_id: str
    ticket_number: str
    channel: Channel
    created_at: datetime
    text: str
    recorded_version: str | None  # the rule set that decided it at the time
    model_flags: tuple[str, ...] = ()  # a draft's: the labels its model gave (replayed)


async def collect(store: CrmStore, since: datetime, *, limit: int = 100_000) -> list[Sample]:
    """The period's customer messages and judged drafts, oldest first."""
    tickets: dict[str, str] = {}
    stored = await store.messages_since(since, limit)
    # a message's decision is recorded on its reply (or on itself when held): by id
    decided = {m.record.message_id: m.record.ruleset_version for m in stored if m.record}
    samples = []
    for m in stored:
        if m.direction is Direction.INBOUND and m.author is Author.CUSTOMER:
            inbound = await store.inbound_message(m.id)
            if inbound is None:
                continue
            text = f"{inbound.subject}\n{inbound.text}" if inbound.subject else inbound.text
            version = decided.get(m.id)
            stage: Stage = "input"
            flags: tuple[str, ...] = ()
        elif m.author is Author.AGENT and m.record and m.record.output_decision is not None:
            text = m.record.blocked_draft or m.text
            version = m.record.output_decision.ruleset_version
            stage = "output"
            flags = m.record.output_decision.model_flags
        else:
            continue
        if m.conversation_id not in tickets:
            conversation = await store.get_conversation(m.conversation_id)
            tickets[m.conversation_id] = conversation.ticket_number if conversation else "?"
        ticket = tickets[m.conversation_id]
        samples.append(Sample(stage, m.id, ticket, m.channel, m.created_at, text, version, flags))
    return samples


class Verdict(msgspec.Struct, frozen=True, kw_only=True):
    action: str
    reasons: tuple[str, ...]
    rule_ids: tuple[str, ...]
    priority: Priority | None = None
    tags: tuple[str, ...] = ()

    @classmethod
    def of(cls, d: Decision) -> Verdict:
        return cls(
            action=d.action,
            reasons=d.reasons,
            rule_ids=d.rule_ids,
            priority=d.priority,
            tags=d.tags,
        )


class Example(msgspec.Struct, frozen=True, kw_only=True):
    message_id: str
    ticket_number: str
    channel: Channel
    created_at: datetime
    excerpt: str
    active: Verdict
    proposed: Verdict
    evidence: tuple[str, ...]  # "rule-id: "phrase"; sentiment 0.12 (rule: below 0.15)"


class ChangeGroup(msgspec.Struct, frozen=True, kw_only=True):
    stage: Stage
    kind: Kind
    rule_ids: tuple[str, ...]  # the rules that decide the difference
    reason: str | None
    count: int
    examples: tuple[Example, ...]


class StageCounts(msgspec.Struct, frozen=True, kw_only=True):
    replayed: int
    changed: int
    active_stopped: int  # escalated (input) or blocked (output) under the active set
    proposed_stopped: int
    active_errors: int  # policy_error decisions (the evaluators failed or disagreed)
    proposed_errors: int


class TeamVolume(msgspec.Struct, frozen=True, kw_only=True):
    team: str
    active: int
    proposed: int
    change: int
    change_per_day: float
    change_percent: float | None  # None when the active set hands none over


class RuleSetInfo(msgspec.Struct, frozen=True, kw_only=True):
    version: str
    directory: str
    rules: int
    input_active: int
    output_active: int


class RuleDiff(msgspec.Struct, frozen=True, kw_only=True):
    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[str, ...]


class ShadowReport(msgspec.Struct, frozen=True, kw_only=True):
    created_at: datetime
    since: datetime
    until: datetime
    active: RuleSetInfo
    proposed: RuleSetInfo
    identical_sets: bool
    rule_diff: RuleDiff
    input: StageCounts
    output: StageCounts
    zero_changes: bool
    changes: tuple[ChangeGroup, ...]
    teams: tuple[TeamVolume, ...]
    recorded_versions: dict[str, int]  # the rule-set versions that decided these at the time
    notes: tuple[str, ...]


NOTES = (
    "Read-only: no ticket, message or event was written; only this report is saved.",
    "Hand-overs counted are the rules' own: input escalations plus blocked drafts. "
    "Hand-overs the pipeline makes without a rule (no_kb_match, ungrounded, model errors) "
    "are not re-run and are the same under both sets.",
    "Output stage: a blocked draft is replayed as drafted; an answered one as it was sent "
    "(with greeting and signature), the only text stored for it.",
)


def rule_set_info(rules: RuleSet, directory: str) -> RuleSetInfo:
    return RuleSetInfo(
        version=rules.version,
        directory=directory,
        rules=len(rules.rules),
        input_active=len(rules.input.rules),
        output_active=len(rules.output.rules),
    )


def rule_diff(active: RuleSet, proposed: RuleSet) -> RuleDiff:
    old = {r.rule.id: r.rule for r in active.rules}
    new = {r.rule.id: r.rule for r in proposed.rules}
    return RuleDiff(
        added=tuple(sorted(new.keys() - old.keys())),
        removed=tuple(sorted(old.keys() - new.keys())),
        changed=tuple(sorted(i for i in old.keys() & new.keys() if old[i] != new[i])),
    )


@dataclass(slots=True)
class _Change:
    sample: Sample
    active: Decision
    proposed: Decision


def _stops(d: Decision) -> bool:
    return d.action in ("escalate", "block")


def _kind(c: _Change) -> Kind:
    old, new = _stops(c.active), _stops(c.proposed)
    if new and not old:
        return "newly_escalated" if c.sample.stage == "input" else "newly_blocked"
    if old and not new:
        return "newly_allowed"
    if old and c.active.reasons != c.proposed.reasons:
        return "reasons_changed"
    return "other"


def _key(c: _Change, kind: Kind) -> tuple[tuple[str, ...], str | None]:
    """The rules behind the difference (fired under one set only, or the stopping rules
    when the same rules fire with another effect) and the reason it is about."""
    differ = tuple(sorted(set(c.active.rule_ids) ^ set(c.proposed.rule_ids)))
    side = c.active if kind == "newly_allowed" else c.proposed
    reason = side.reasons[0] if side.reasons else None
    return differ or side.rule_ids, reason


def _features(engine: PolicyEngine, sample: Sample) -> MessageFeatures:
    """What the pipeline computes for this stage (the output stage as `evaluate` does)."""
    if sample.stage == "input":
        return features(sample.text, sample.channel)
    stage = engine.rules.output
    sentiment = None if stage.uses_sentiment else 0.5
    numbers = stage.matcher.wants_numbers
    return features(
        sample.text, sample.channel, sentiment, numbers=numbers, model_flags=sample.model_flags
    )


def _evidence(
    active: PolicyEngine, proposed: PolicyEngine, c: _Change, rule_ids: tuple[str, ...]
) -> tuple[str, ...]:
    lines = []
    sides = ((active, c.active, "active"), (proposed, c.proposed, "proposed"))
    for engine, decision, label in sides:
        stage = engine.rules.stage(c.sample.stage)
        feats = _features(engine, c.sample)
        for rule_id in decision.rule_ids:
            if rule_id in rule_ids:
                lines.append(f"[{label}] {evidence(stage, rule_id, feats)}")
    return tuple(lines)


def _example(
    active: PolicyEngine, proposed: PolicyEngine, c: _Change, rule_ids: tuple[str, ...]
) -> Example:
    s = c.sample
    text = " ".join(s.text.split())
    return Example(
        message_id=s.message_id,
        ticket_number=s.ticket_number,
        channel=s.channel,
        created_at=s.created_at,
        excerpt=text if len(text) <= EXCERPT else text[: EXCERPT - 1] + "…",
        active=Verdict.of(c.active),
        proposed=Verdict.of(c.proposed),
        evidence=_evidence(active, proposed, c, rule_ids),
    )


def _decide(engine: PolicyEngine, sample: Sample, shared: MessageFeatures | None) -> Decision:
    """`shared`: the input stage's features, computed once for both sets."""
    return engine.evaluate_features(sample.stage, shared or _features(engine, sample))


def _differs(a: Decision, b: Decision) -> bool:
    return Verdict.of(a) != Verdict.of(b)


def _errors(decisions: Sequence[Decision]) -> int:
    return sum(1 for d in decisions if "policy_error" in d.reasons)


class _Tally:
    def __init__(self) -> None:
        self.active: list[Decision] = []
        self.proposed: list[Decision] = []
        self.changes: list[_Change] = []

    def counts(self) -> StageCounts:
        return StageCounts(
            replayed=len(self.active),
            changed=len(self.changes),
            active_stopped=sum(1 for d in self.active if _stops(d)),
            proposed_stopped=sum(1 for d in self.proposed if _stops(d)),
            active_errors=_errors(self.active),
            proposed_errors=_errors(self.proposed),
        )


def _teams(tallies: Sequence[_Tally], team_of: TeamOf, days: float) -> tuple[TeamVolume, ...]:
    old: Counter[str] = Counter()
    new: Counter[str] = Counter()
    for tally in tallies:
        old.update(team_of(d.reasons[0] if d.reasons else None) for d in tally.active if _stops(d))
        new.update(
            team_of(d.reasons[0] if d.reasons else None) for d in tally.proposed if _stops(d)
        )
    return tuple(
        TeamVolume(
            team=team,
            active=old[team],
            proposed=new[team],
            change=new[team] - old[team],
            change_per_day=round((new[team] - old[team]) / days, 2) if days else 0.0,
            change_percent=round(100 * (new[team] - old[team]) / old[team], 1)
            if old[team]
            else None,
        )
        for team in sorted(old.keys() | new.keys())
    )


def _groups(
    active: PolicyEngine, proposed: PolicyEngine, tally: _Tally, examples: int
) -> list[ChangeGroup]:
    grouped: dict[tuple[Kind, tuple[str, ...], str | None], list[_Change]] = {}
    for c in tally.changes:
        kind = _kind(c)
        rule_ids, reason = _key(c, kind)
        grouped.setdefault((kind, rule_ids, reason), []).append(c)
    return [
        ChangeGroup(
            stage=members[0].sample.stage,
            kind=kind,
            rule_ids=rule_ids,
            reason=reason,
            count=len(members),
            examples=tuple(_example(active, proposed, c, rule_ids) for c in members[:examples]),
        )
        for (kind, rule_ids, reason), members in sorted(
            grouped.items(), key=lambda item: (-len(item[1]), item[0][0], item[0][1])
        )
    ]


def compare(
    active: PolicyEngine,
    proposed: PolicyEngine,
    samples: Sequence[Sample],
    *,
    since: datetime,
    until: datetime,
    directories: tuple[str, str],
    team_of: TeamOf,
    examples: int = 3,
) -> ShadowReport:
    """Both rule sets on every sample; every difference grouped by stage, kind, rules and
    reason, with up to `examples` messages each and the words that decided them."""
    tallies: dict[Stage, _Tally] = {"input": _Tally(), "output": _Tally()}
    for sample in samples:
        shared = features(sample.text, sample.channel) if sample.stage == "input" else None
        old = _decide(active, sample, shared)
        new = _decide(proposed, sample, shared)
        tally = tallies[sample.stage]
        tally.active.append(old)
        tally.proposed.append(new)
        if _differs(old, new):
            tally.changes.append(_Change(sample, old, new))
    groups = [
        group for tally in tallies.values() for group in _groups(active, proposed, tally, examples)
    ]
    days = max((until - since) / timedelta(days=1), 1 / 24)
    recorded = Counter(s.recorded_version or "none" for s in samples)
    return ShadowReport(
        created_at=until,
        since=since,
        until=until,
        active=rule_set_info(active.rules, directories[0]),
        proposed=rule_set_info(proposed.rules, directories[1]),
        identical_sets=active.version == proposed.version,
        rule_diff=rule_diff(active.rules, proposed.rules),
        input=tallies["input"].counts(),
        output=tallies["output"].counts(),
        zero_changes=not groups,
        changes=tuple(groups),
        teams=_teams(list(tallies.values()), team_of, days),
        recorded_versions=dict(recorded.most_common()),
        notes=NOTES,
    )
