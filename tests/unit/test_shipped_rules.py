"""The shipped rules/ directory: loads, is big enough, and every inline example holds."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fte_core.policy.cases import run_examples
from fte_core.policy.engine import PolicyEngine
from fte_core.policy.loader import RuleSet, load_rules
from fte_core.policy.schema import INPUT_REASONS, OUTPUT_REASONS

RULES_DIR = Path(__file__).resolve().parents[2] / "rules"
MIN_EXAMPLES = 5


@pytest.fixture(scope="module")
def shipped() -> RuleSet:
    return load_rules(RULES_DIR)


@pytest.fixture(scope="module")
def engine(shipped: RuleSet) -> Iterator[PolicyEngine]:
    engine = PolicyEngine(shipped)
    yield engine
    engine.close()


def test_at_least_30_rules(shipped: RuleSet) -> None:
    assert len(shipped.rules) >= 30


def test_every_rule_has_enough_examples(shipped: RuleSet) -> None:
    short = [
        (r.rule.id, len(r.rule.examples.match), len(r.rule.examples.no_match))
        for r in shipped.rules
        if len(r.rule.examples.match) < MIN_EXAMPLES or len(r.rule.examples.no_match) < MIN_EXAMPLES
    ]
    assert short == []


def test_every_shipped_reason_has_a_rule(shipped: RuleSet) -> None:
    used = {r.rule.then.reason for r in shipped.rules if r.rule.enabled}
    assert used >= INPUT_REASONS
    assert OUTPUT_REASONS - {"ungrounded"} <= used  # `ungrounded` is the pipeline's call


def test_all_inline_examples_pass(engine: PolicyEngine) -> None:
    report = run_examples(engine)
    failures = [(r.id, r.expected, r.action, r.rule_ids) for r in report.results if not r.passed]
    assert failures == []
    assert report.passed >= 30 * 2 * MIN_EXAMPLES
