"""Guardrail properties of a rule set (default the shipped `rules/`; FTE_GUARDRAIL_RULES=DIR).

These hold for any sound policy: a trigger phrase escalates however it is disguised, the
decision depends on the message alone, no text breaks the engine, drafts quoting money
are blocked and ordinary documentation-style drafts pass.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fte_core.models import Channel, Decision
from fte_core.policy.engine import PolicyEngine
from fte_core.policy.loader import RuleSet
from fte_core.policy.schema import Rule
from tests import strategies as s

FAST = settings(deadline=None, max_examples=150, suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(deadline=None, max_examples=25, suppress_health_check=[HealthCheck.too_slow])


@dataclass(frozen=True)
class Trigger:
    rule_id: str
    reason: str
    phrase: str
    channels: tuple[Channel, ...] | None


def _is_plain_phrase_rule(rule: Rule) -> bool:
    when = rule.when
    plain = ("any_phrases", "channel_in", "except_within")
    others = [f for f in when.__struct_fields__ if f not in plain]
    return (
        rule.enabled
        and rule.stage == "input"
        and rule.then.action == "escalate"
        and when.any_phrases is not None
        and all(getattr(when, f) is None for f in others)
    )


def triggers(rules: RuleSet) -> list[Trigger]:
    """Every phrase of an input escalate rule whose `when` is a plain phrase list."""
    found = []
    for loaded in rules.rules:
        rule = loaded.rule
        if _is_plain_phrase_rule(rule) and rule.then.reason:
            for phrase in rule.when.any_phrases or ():
                found.append(Trigger(rule.id, rule.then.reason, phrase, rule.when.channel_in))
    return found


@pytest.fixture(scope="module")
def trigger_list(guardrail_rules: RuleSet) -> list[Trigger]:
    found = triggers(guardrail_rules)
    assert found, "the rule set has no plain phrase escalation rule to test"
    return found


def test_every_trigger_phrase_escalates_in_a_plain_sentence(
    guardrail_engine: PolicyEngine, trigger_list: list[Trigger]
) -> None:
    missed = []
    for t in trigger_list:
        phrase = t.phrase.replace("*", "")
        channel = (t.channels or (Channel.EMAIL,))[0]
        decision = guardrail_engine.evaluate("input", f"Hello, {phrase} please.", channel)
        if decision.action != "escalate" or t.reason not in decision.reasons:
            missed.append((t.rule_id, t.phrase, decision.reasons))
    assert missed == []


@FAST
@given(data=st.data())
def test_disguised_trigger_phrase_escalates_with_its_reason(
    guardrail_engine: PolicyEngine, trigger_list: list[Trigger], data: st.DataObject
) -> None:
    trigger = data.draw(st.sampled_from(trigger_list), label="trigger")
    channel, text = data.draw(s.message_with_phrase(trigger.phrase, trigger.channels))
    decision = guardrail_engine.evaluate("input", text, channel)
    assert decision.action == "escalate", (trigger, decision)
    assert trigger.reason in decision.reasons, (trigger, decision)
    assert decision.evaluator == "durable_rules"


def _any_message() -> st.SearchStrategy[tuple[Channel, str]]:
    return st.one_of(
        s.channel_message(),
        st.tuples(s.channels(), s.unicode_text(200)),
        st.tuples(s.channels(), s.vocabulary_message()),
    )


@FAST
@given(message=_any_message(), others=st.lists(_any_message(), max_size=5))
def test_decision_is_a_pure_function_of_the_message(
    guardrail_engine: PolicyEngine,
    message: tuple[Channel, str],
    others: list[tuple[Channel, str]],
) -> None:
    channel, text = message
    for stage in ("input", "output"):
        first = guardrail_engine.evaluate(stage, text, channel)
        for other_channel, other_text in others:
            guardrail_engine.evaluate(stage, other_text, other_channel)
        assert guardrail_engine.evaluate(stage, text, channel) == first


@SLOW
@given(batch=st.lists(_any_message(), min_size=2, max_size=12), seed=st.integers())
def test_batch_order_changes_nothing(
    guardrail_engine: PolicyEngine, batch: list[tuple[Channel, str]], seed: int
) -> None:
    def run(items: list[tuple[Channel, str]]) -> dict[tuple[Channel, str], Decision]:
        return {m: guardrail_engine.evaluate("input", m[1], m[0]) for m in items}

    shuffled = list(batch)
    random.Random(seed).shuffle(shuffled)
    assert run(shuffled) == run(batch)


@FAST
@given(channel=s.channels(), text=s.unicode_text(2_000))
def test_no_text_breaks_the_engine(
    guardrail_engine: PolicyEngine, channel: Channel, text: str
) -> None:
    for stage in ("input", "output"):
        decision = guardrail_engine.evaluate(stage, text, channel)
        assert decision.evaluator == "durable_rules", decision.error
        assert decision.error is None
        assert decision.action in ("allow", "escalate" if stage == "input" else "block")


@settings(deadline=None, max_examples=8)
@given(channel=s.channels(), text=s.huge_text(100_000), sentiment=s.sentiments())
def test_huge_texts_do_not_break_the_engine(
    guardrail_engine: PolicyEngine, channel: Channel, text: str, sentiment: float
) -> None:
    # The score is given: VADER is quadratic in the word count (minutes at 100 KB);
    # the text conditions still run over the whole normalised text.
    for stage in ("input", "output"):
        decision = guardrail_engine.evaluate(stage, text, channel, sentiment=sentiment)
        assert decision.evaluator == "durable_rules", decision.error


def _blocks(rules: RuleSet, reason: str) -> bool:
    return any(
        r.rule.enabled and r.rule.stage == "output" and r.rule.then.reason == reason
        for r in rules.rules
    )


@FAST
@given(channel=s.channels(), draft=s.draft_with_amount())
def test_drafts_quoting_an_amount_are_blocked(
    guardrail_engine: PolicyEngine, guardrail_rules: RuleSet, channel: Channel, draft: str
) -> None:
    assert _blocks(guardrail_rules, "pricing_disclosure"), "no pricing_disclosure output rule"
    decision = guardrail_engine.evaluate("output", draft, channel)
    assert decision.action == "block", draft
    assert "pricing_disclosure" in decision.reasons, (draft, decision)


@FAST
@given(channel=s.channels(), draft=s.benign_draft())
def test_benign_drafts_are_allowed(
    guardrail_engine: PolicyEngine, channel: Channel, draft: str
) -> None:
    decision = guardrail_engine.evaluate("output", draft, channel)
    assert decision.action == "allow", (draft, decision)
