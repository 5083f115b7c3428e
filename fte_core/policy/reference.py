"""The pure-Python reference evaluator and the decision assembly both evaluators share.

It is the fail-safe when durable_rules raises, and the oracle of the differential test.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass

from fte_core.models import Channel, Decision, Priority, RuleAction
from fte_core.policy.compiled import (
    AllOf,
    AnyOf,
    ChannelIn,
    CompiledRule,
    LanguageIn,
    ModelFlagsAny,
    Node,
    Not,
    SentimentAbove,
    SentimentBelow,
    Similar,
    StageRules,
    TextAtom,
    urgency_of,
)


@dataclass(frozen=True, slots=True)
class Facts:
    """What the rules see of one message: no raw text, only features."""

    atoms: tuple[bool, ...]
    sentiment: float
    channel: Channel
    language: str = "en"
    views: tuple[str | None, ...] = ()  # per atom: the view it matched on (None: no match)
    similarity: tuple[int, ...] = ()  # per similarity slot, in basis points (0..10000)
    model_flags: frozenset[str] = frozenset()  # the model's labels (output stage)


def holds(node: Node, facts: Facts) -> bool:
    match node:
        case TextAtom(index):
            return facts.atoms[index]
        case SentimentBelow(value):
            return facts.sentiment < value
        case SentimentAbove(value):
            return facts.sentiment > value
        case ChannelIn(channels):
            return facts.channel in channels
        case LanguageIn(languages):
            return facts.language in languages
        case Similar(slot, threshold):
            return facts.similarity[slot] >= round(threshold * 10_000)
        case ModelFlagsAny(flags):
            return any(flag in facts.model_flags for flag in flags)
        case AllOf(items):
            return all(holds(n, facts) for n in items)
        case AnyOf(items):
            return any(holds(n, facts) for n in items)
        case Not(item):
            return not holds(item, facts)
    raise TypeError(f"unknown condition node {node!r}")


Check = Callable[[Facts], bool]


def check_of(node: Node) -> Check:
    """`holds` specialised to one condition once, as closures: the reference evaluator
    judges every message beside durable_rules, so walking the tree each time (~40 µs for
    the shipped input rules) would double the cost of the rules."""
    match node:
        case TextAtom(index):
            return lambda f: f.atoms[index]
        case SentimentBelow(value):
            return lambda f: f.sentiment < value
        case SentimentAbove(value):
            return lambda f: f.sentiment > value
        case ChannelIn(channels):
            return lambda f: f.channel in channels
        case LanguageIn(languages):
            return lambda f: f.language in languages
        case Similar(slot, threshold):
            points = round(threshold * 10_000)
            return lambda f: f.similarity[slot] >= points
        case ModelFlagsAny(flags):
            wanted = frozenset(flags)
            return lambda f: not wanted.isdisjoint(f.model_flags)
        case AllOf(items):
            return _all_of(tuple(check_of(n) for n in items))
        case AnyOf(items):
            return _any_of(tuple(check_of(n) for n in items))
        case Not(item):
            inner = check_of(item)
            return lambda f: not inner(f)
    raise TypeError(f"unknown condition node {node!r}")


def _all_of(checks: tuple[Check, ...]) -> Check:
    """Plain loops, and two items unrolled (most conjunctions): a generator per call in
    `all(...)` cost more than the checks themselves."""
    if len(checks) == 2:
        first, second = checks
        return lambda f: first(f) and second(f)

    def every(f: Facts) -> bool:
        for check in checks:  # noqa: SIM110 - all(<generator>) is the slow form
            if not check(f):
                return False
        return True

    return every


def _any_of(checks: tuple[Check, ...]) -> Check:
    if len(checks) == 2:
        first, second = checks
        return lambda f: first(f) or second(f)

    def some(f: Facts) -> bool:
        for check in checks:  # noqa: SIM110 - any(<generator>) is the slow form
            if check(f):
                return True
        return False

    return some


_checks: dict[int, tuple[StageRules, tuple[tuple[str, Check], ...]]] = {}
_checks_lock = threading.Lock()


def _stage_checks(stage: StageRules) -> tuple[tuple[str, Check], ...]:
    cached = _checks.get(id(stage))
    if cached is not None and cached[0] is stage:
        return cached[1]
    checks = tuple((rule.id, check_of(rule.condition)) for rule in stage.rules)
    with _checks_lock:
        if len(_checks) >= 16:  # a few rule-set versions; reloads are rare
            _checks.clear()
        _checks[id(stage)] = (stage, checks)
    return checks


def reference_fired(stage: StageRules, facts: Facts) -> set[str]:
    return {rule_id for rule_id, check in _stage_checks(stage) if check(facts)}


_STAGE_ACTION: dict[str, RuleAction] = {"input": "escalate", "output": "block"}


def decide(
    stage: StageRules,
    fired: Collection[str],
    version: str,
    evaluator: str,
    error: str | None = None,
    views: tuple[str | None, ...] = (),
) -> Decision:
    """Turn the set of fired rule ids into a Decision; order never depends on firing order."""
    if not fired:  # most messages: nothing to order or merge
        return Decision(
            stage=stage.stage,
            action="allow",
            ruleset_version=version,
            evaluator=evaluator,
            error=error,
        )
    rules = sorted((stage.by_id[i] for i in set(fired)), key=lambda r: r.order)
    stop = _STAGE_ACTION[stage.stage]
    stopping = [r for r in rules if r.then.action == stop]
    if any(not r.then.fallback for r in stopping):
        stopping = [r for r in stopping if not r.then.fallback]
    stopping.sort(key=lambda r: (-urgency_of(r.then).rank, r.order))
    reasons = tuple(dict.fromkeys(r.then.reason for r in stopping if r.then.reason))
    priorities = [r.then.priority for r in rules if r.then.priority is not None]
    return Decision(
        stage=stage.stage,
        action=stop if stopping else "allow",
        reasons=reasons,
        rule_ids=tuple(r.id for r in rules),
        ruleset_version=version,
        urgency=urgency_of(stopping[0].then) if stopping else None,
        priority=max(priorities, key=lambda p: p.rank) if priorities else None,
        tags=tuple(sorted({r.then.tag for r in rules if r.then.tag})),
        evaluator=evaluator,
        error=error,
        text_views=_matched_views(rules, views),
    )


def _matched_views(rules: list[CompiledRule], views: tuple[str | None, ...]) -> tuple[str, ...]:
    """Which view each fired rule's text matched on ("refund-words:joined")."""
    if not views:
        return ()
    out = []
    for rule in rules:
        names = dict.fromkeys(views[i] for i in rule.atoms if views[i] is not None)
        if names:
            out.append(f"{rule.id}:{'+'.join(n for n in names if n)}")
    return tuple(out)


def failsafe(stage: str, version: str, error: str) -> Decision:
    """Both evaluators failed: never fail open."""
    return Decision(
        stage=stage,
        action=_STAGE_ACTION[stage],
        reasons=("policy_error",),
        ruleset_version=version,
        urgency=Priority.HIGH,
        evaluator="failsafe",
        error=error,
    )
