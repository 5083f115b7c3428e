"""fte_core.shadow.compare and the evidence lines, on small rule sets: every kind of
change is found, grouped by its rules and reason, and explained with the words."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from fte_core.models import Channel
from fte_core.policy.engine import PolicyEngine, features
from fte_core.policy.evidence import evidence
from fte_core.policy.loader import build_ruleset
from fte_core.shadow import Sample, compare

ACTIVE = """rules:
  - id: refund-words
    stage: input
    description: Money back goes to billing.
    when: {any_phrases: [refund*, money back]}
    then: {action: escalate, reason: refund, urgency: high}
  - id: very-angry
    stage: input
    description: Very unhappy customers go to a person.
    when: {sentiment_below: 0.15}
    then: {action: escalate, reason: negative_sentiment}
  - id: promised-refund
    stage: output
    description: The draft promises money back.
    when: {any_phrases: [refunded, will refund]}
    then: {action: block, reason: unapproved_commitment}
"""
PRICE_RULE = """  - id: quoted-price
    stage: output
    description: The draft states an amount.
    when: {patterns: ['\\d+ ?(dollars|usd)']}
    then: {action: block, reason: pricing_disclosure}
"""
NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)


def _engine(text: str) -> PolicyEngine:
    return PolicyEngine(build_ruleset([("rules.yaml", text)]))


@pytest.fixture
def engines() -> Iterator[tuple[PolicyEngine, PolicyEngine]]:
    active = _engine(ACTIVE)
    proposed = _engine(ACTIVE.replace("reason: refund,", "reason: pricing,") + PRICE_RULE)
    try:
        yield active, proposed
    finally:
        active.close()
        proposed.close()


def _sample(i: int, stage: str, text: str) -> Sample:
    return Sample(
        stage="input" if stage == "input" else "output",
        message_id=f"m{i}",
        ticket_number=f"TKT-{i:06d}",
        channel=Channel.EMAIL,
        created_at=NOW - timedelta(hours=i),
        text=text,
        recorded_version="v0",
    )


def _team(reason: str | None) -> str:
    return {"refund": "billing", "pricing": "billing"}.get(reason or "", "support")


def test_every_change_is_grouped_with_its_rules_reason_and_words(
    engines: tuple[PolicyEngine, PolicyEngine],
) -> None:
    active, proposed = engines
    samples = [
        _sample(1, "input", "Please refund my last invoice"),
        _sample(2, "input", "I want my money back"),
        _sample(3, "input", "How do I add a label?"),
        _sample(4, "output", "The Pro plan is 49 dollars a month."),
        _sample(5, "output", "I have refunded your card."),
    ]
    report = compare(
        active,
        proposed,
        samples,
        since=NOW - timedelta(days=2),
        until=NOW,
        directories=("rules", "proposed"),
        team_of=_team,
    )
    assert not report.zero_changes
    assert report.rule_diff.added == ("quoted-price",)
    assert report.rule_diff.changed == ("refund-words",)
    kinds = {(g.stage, g.kind, g.rule_ids, g.reason): g.count for g in report.changes}
    assert kinds == {
        ("input", "reasons_changed", ("refund-words",), "pricing"): 2,
        ("output", "newly_blocked", ("quoted-price",), "pricing_disclosure"): 1,
    }
    price = next(g for g in report.changes if g.kind == "newly_blocked")
    assert price.examples[0].evidence == ('[proposed] quoted-price: "49 dollars" (a pattern)',)
    reasons = next(g for g in report.changes if g.kind == "reasons_changed")
    assert [e.message_id for e in reasons.examples] == ["m1", "m2"]
    assert reasons.examples[1].evidence == (
        '[active] refund-words: "money back"',
        '[proposed] refund-words: "money back"',
    )
    assert (report.input.replayed, report.input.changed) == (3, 2)
    assert (report.output.replayed, report.output.active_stopped) == (2, 1)
    teams = {t.team: (t.active, t.proposed, t.change, t.change_per_day) for t in report.teams}
    assert teams == {"billing": (2, 2, 0, 0.0), "support": (1, 2, 1, 0.5)}
    assert report.recorded_versions == {"v0": 5}


def test_the_same_rules_change_nothing(engines: tuple[PolicyEngine, PolicyEngine]) -> None:
    active, _ = engines
    same = _engine(ACTIVE)
    try:
        report = compare(
            active,
            same,
            [_sample(1, "input", "refund please"), _sample(2, "output", "We refunded it.")],
            since=NOW - timedelta(days=1),
            until=NOW,
            directories=("a", "b"),
            team_of=_team,
        )
    finally:
        same.close()
    assert report.zero_changes
    assert report.identical_sets
    assert report.changes == ()
    assert report.rule_diff.added == report.rule_diff.removed == report.rule_diff.changed == ()


def test_evidence_gives_the_values_of_non_text_conditions(
    engines: tuple[PolicyEngine, PolicyEngine],
) -> None:
    active, _ = engines
    feats = features("This is awful, I hate you, worst service ever!!!", Channel.EMAIL)
    line = evidence(active.rules.input, "very-angry", feats)
    assert line.startswith(f"very-angry: sentiment {feats.sentiment:.2f} (rule: below 0.15)")
    missing = evidence(active.rules.input, "nope", feats)
    assert missing == "nope: not an active input rule of this set"
