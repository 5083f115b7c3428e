"""The rule set the guardrail suite runs against: shipped `rules/`, or FTE_GUARDRAIL_RULES."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from fte_core.policy.engine import PolicyEngine
from fte_core.policy.loader import RuleSet, load_rules

SHIPPED_RULES = Path(__file__).resolve().parents[2] / "rules"


def guardrail_rules_dir() -> Path:
    return Path(os.environ.get("FTE_GUARDRAIL_RULES") or SHIPPED_RULES)


@pytest.fixture(scope="session")
def guardrail_rules() -> RuleSet:
    return load_rules(guardrail_rules_dir())


@pytest.fixture(scope="session")
def guardrail_engine(guardrail_rules: RuleSet) -> Iterator[PolicyEngine]:
    engine = PolicyEngine(guardrail_rules)
    yield engine
    engine.close()
