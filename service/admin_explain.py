"""A decision record in plain words, for the inbox's ticket view: which rule fired, on
which words and in which text view; the sentiment; the passages cited; the model, its
tokens and cost; the time each step took.

The record stores the rule ids and the view each text rule matched in; the words are found
again by running the rule's own phrases and patterns over that view of the message (the
rule set is the one serving now: a rule changed since may no longer show its words)."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping

import msgspec

from fte_core.models import Decision, DecisionRecord
from fte_core.policy.loader import RuleSet
from fte_core.policy.schema import Condition, Rule
from fte_core.text import normalize, phrase_regex
from fte_core.textviews import text_views

MAX_WORDS = 5
STEP_NAMES: Mapping[str, str] = {
    "intake": "taking the message in",
    "input_rules": "input rules",
    "retrieve": "knowledge-base search",
    "answer": "writing the answer",
    "output_rules": "output rules",
}
ACTIONS: Mapping[str, str] = {
    "answer": "Answered by the agent.",
    "escalate": "Handed over to a person.",
    "hold": "Not answered by the agent: a person owns this ticket.",
}


class RuleHit(msgspec.Struct, frozen=True, kw_only=True):
    rule_id: str
    description: str
    view: str | None  # the text view it matched in; None: not a text match
    words: tuple[str, ...]


class StageExplained(msgspec.Struct, frozen=True, kw_only=True):
    stage: str
    action: str
    evaluator: str
    error: str | None
    hits: tuple[RuleHit, ...]


class Explanation(msgspec.Struct, frozen=True, kw_only=True):
    summary: str
    reasons: tuple[str, ...]
    stages: tuple[StageExplained, ...]
    sentiment: str
    passages: tuple[str, ...]
    model: str
    tokens: str
    cost: str
    latency: str
    ruleset: str
    blocked_draft: str | None
    fallback: str | None


def explain(
    record: DecisionRecord, customer_text: str | None, answer_text: str | None, rules: RuleSet
) -> Explanation:
    by_id = {loaded.rule.id: loaded.rule for loaded in rules.rules}
    stages = [_stage(record.input_decision, customer_text, by_id)]
    if record.output_decision is not None:
        draft = record.blocked_draft or answer_text
        stages.append(_stage(record.output_decision, draft, by_id))
    usage = record.usage
    return Explanation(
        summary=ACTIONS.get(record.action, record.action),
        reasons=record.reasons,
        stages=tuple(stages),
        sentiment=_sentiment(record.sentiment),
        passages=record.passage_ids,
        model=record.model or ("offline extractive responder" if record.responder else "none"),
        tokens=f"{usage.prompt_tokens} in, {usage.completion_tokens} out",
        cost=f"${usage.cost_usd:.4f}",
        latency=_latency(record.latency_ms),
        ruleset=record.ruleset_version,
        blocked_draft=record.blocked_draft,
        fallback=record.fallback,
    )


def _stage(decision: Decision, text: str | None, rules: Mapping[str, Rule]) -> StageExplained:
    views = dict(v.split(":", 1) for v in decision.text_views if ":" in v)
    hits = []
    for rule_id in decision.rule_ids:
        rule = rules.get(rule_id)
        view = views.get(rule_id)
        words = _words(rule, text, view) if rule is not None and text else ()
        hits.append(
            RuleHit(
                rule_id=rule_id,
                description=rule.description if rule else "(no longer in the rule set)",
                view=view,
                words=words,
            )
        )
    return StageExplained(
        stage=decision.stage,
        action=decision.action,
        evaluator=decision.evaluator,
        error=decision.error,
        hits=tuple(hits),
    )


def _words(rule: Rule, text: str, view: str | None) -> tuple[str, ...]:
    readings = {v.name: v.text for v in text_views(normalize(text))}
    order = [view] if view in readings else []
    order += [name for name in readings if name != view]
    found: list[str] = []
    for regex in _regexes(rule.when):
        for name in order:
            match = regex.search(readings[name])
            if match and match.group(0) not in found:
                found.append(match.group(0))
                break
        if len(found) >= MAX_WORDS:
            break
    return tuple(found)


def _regexes(condition: Condition) -> Iterator[re.Pattern[str]]:
    for phrase in (*(condition.any_phrases or ()), *(condition.all_phrases or ())):
        try:
            yield re.compile(phrase_regex(phrase))
        except (ValueError, re.error):
            continue  # a phrase the loader accepted always compiles; be safe for old ones
    for pattern in condition.patterns or ():
        try:
            yield re.compile(pattern)
        except re.error:
            continue
    for child in (*(condition.all or ()), *(condition.any or ())):
        yield from _regexes(child)


def _sentiment(score: float) -> str:
    if score <= -0.5:
        words = "very negative"
    elif score < -0.05:
        words = "negative"
    elif score > 0.05:
        words = "positive"
    else:
        words = "neutral"
    return f"{words} ({score:+.2f})"


def _latency(steps: Mapping[str, float]) -> str:
    if not steps:
        return "not recorded"
    parts = ", ".join(f"{STEP_NAMES.get(k, k)} {v:.1f} ms" for k, v in steps.items())
    return f"{sum(steps.values()):.1f} ms in all ({parts})"
