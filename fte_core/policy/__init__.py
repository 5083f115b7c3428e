"""Rule files, their compilation and the policy engine (durable_rules + reference)."""

from fte_core.policy.cases import Case, CaseResult, TestReport, parse_cases, run_cases, run_examples
from fte_core.policy.engine import MessageFeatures, PolicyEngine, features
from fte_core.policy.loader import RuleSet, build_ruleset, load_rules

__all__ = [
    "Case",
    "CaseResult",
    "MessageFeatures",
    "PolicyEngine",
    "RuleSet",
    "TestReport",
    "build_ruleset",
    "features",
    "load_rules",
    "parse_cases",
    "run_cases",
    "run_examples",
]
