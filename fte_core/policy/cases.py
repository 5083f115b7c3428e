"""Rule tests: a cases file (SPEC 5) or the rule files' inline examples, run on an engine."""

from __future__ import annotations

from typing import Literal

import msgspec

from fte_core.errors import ValidationError
from fte_core.models import Channel, Decision, ModelLabel
from fte_core.policy.engine import PolicyEngine
from fte_core.policy.schema import (
    INPUT_REASONS,
    MODEL_FLAG_REASONS,
    OUTPUT_REASONS,
    Then,
    example_flags,
    example_text,
)


class Expect(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    action: Literal["escalate", "block", "allow"]
    reason: str | None = None


class Case(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    id: str
    stage: Literal["input", "output"]
    channel: Channel
    text: str
    expect: Expect
    note: str | None = None  # why the case exists, or why its label was corrected
    model_flags: tuple[ModelLabel, ...] = ()  # output cases: the model's labels


# What each stage can decide: a case expecting anything else can never pass.
_ACTIONS = {"input": ("escalate", "allow"), "output": ("block", "allow")}
_REASONS = {
    "input": INPUT_REASONS | {"policy_error"},
    "output": OUTPUT_REASONS | MODEL_FLAG_REASONS | {"policy_error"},
}


def _impossible(case: Case) -> str | None:
    """Why a case can never pass, naming the field and what it may hold."""
    actions = _ACTIONS[case.stage]
    if case.expect.action not in actions:
        return (
            f"`expect.action` {case.expect.action!r} is impossible on the {case.stage} stage "
            f"(allowed: {', '.join(actions)})"
        )
    reason = case.expect.reason
    if reason is not None and case.expect.action == "allow":
        return "`expect.reason` needs an `expect.action` that stops the message, not 'allow'"
    if reason is not None and reason not in _REASONS[case.stage]:
        allowed = ", ".join(sorted(_REASONS[case.stage]))
        return f"`expect.reason` {reason!r} is unknown on the {case.stage} stage ({allowed})"
    return None


class CaseResult(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    passed: bool = msgspec.field(name="pass")
    action: str
    reasons: tuple[str, ...]
    rule_ids: tuple[str, ...]
    expected: str = ""


class TestReport(msgspec.Struct, frozen=True, kw_only=True):
    passed: int
    failed: int
    results: tuple[CaseResult, ...]


class CasesFileError(ValidationError):
    """A cases file line is not a valid case; `line` is 1-based."""

    def __init__(self, line: int | None, message: str) -> None:
        self.line = line
        super().__init__("file" if line is None else f"line {line}", message)


def parse_cases(text: str) -> list[Case]:
    cases: list[Case] = []
    seen: set[str] = set()
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            case = msgspec.json.decode(raw, type=Case)
        except msgspec.DecodeError as exc:
            raise CasesFileError(number, str(exc)) from exc
        if case.id in seen:
            raise CasesFileError(number, f"duplicate case id {case.id!r}")
        if problem := _impossible(case):
            raise CasesFileError(number, f"case {case.id!r}: {problem}")
        seen.add(case.id)
        cases.append(case)
    if not cases:
        raise CasesFileError(None, "no cases: a cases file needs at least one line")
    return cases


def _result(case_id: str, decision: Decision, passed: bool, expected: str) -> CaseResult:
    return CaseResult(
        id=case_id,
        passed=passed,
        action=decision.action,
        reasons=decision.reasons,
        rule_ids=decision.rule_ids,
        expected=expected,
    )


def run_cases(engine: PolicyEngine, cases: list[Case]) -> TestReport:
    results = []
    for case in cases:
        decision = engine.evaluate(
            case.stage, case.text, case.channel, model_flags=case.model_flags
        )
        ok = decision.action == case.expect.action and (
            case.expect.reason is None or case.expect.reason in decision.reasons
        )
        expected = case.expect.action + (f"/{case.expect.reason}" if case.expect.reason else "")
        results.append(_result(case.id, decision, ok, expected))
    return _report(results)


def run_examples(engine: PolicyEngine) -> TestReport:
    """Each rule's `match` examples must fire it; its `no_match` examples must not."""
    results = []
    for loaded in engine.rules.rules:
        rule = loaded.rule
        if not rule.enabled:
            continue
        for kind, examples in (
            ("match", rule.examples.match),
            ("no_match", rule.examples.no_match),
        ):
            for i, example in enumerate(examples, start=1):
                text, channel = example_text(example)
                decision = engine.evaluate(
                    rule.stage, text, channel, model_flags=example_flags(example)
                )
                fired = rule.id in decision.rule_ids
                ok = fired if kind == "match" else not fired
                expected = f"{rule.id} {'fires' if kind == 'match' else 'does not fire'}"
                results.append(_result(f"{rule.id}/{kind}/{i}", decision, ok, expected))
    return _report(results)


class Overlap(msgspec.Struct, frozen=True, kw_only=True):
    """A rule's `no_match` example that another rule of the same stage catches."""

    example: str  # "rule-id/no_match/N", numbered as in the report
    text: str
    caught_by: tuple[str, ...]  # the other rules' ids
    reasons: tuple[str, ...]


def cross_check(engine: PolicyEngine) -> tuple[Overlap, ...]:
    """Every `no_match` example against the WHOLE rule set: a harmless example another rule
    escalates (or blocks) is either a wrong example or an over-broad rule. Rules that only
    tag or raise priority do not count: they change nothing for the customer."""
    overlaps = []
    for loaded in engine.rules.rules:
        rule = loaded.rule
        if not rule.enabled:
            continue
        for i, example in enumerate(rule.examples.no_match, start=1):
            text, channel = example_text(example)
            decision = engine.evaluate(
                rule.stage, text, channel, model_flags=example_flags(example)
            )
            stage = engine.rules.stage(rule.stage)
            stopping = tuple(
                rid for rid in decision.rule_ids if rid != rule.id and _stops(stage.by_id[rid].then)
            )
            if stopping:
                overlaps.append(
                    Overlap(
                        example=f"{rule.id}/no_match/{i}",
                        text=text,
                        caught_by=stopping,
                        reasons=decision.reasons,
                    )
                )
    return tuple(overlaps)


def _stops(then: Then) -> bool:
    """A fallback escalation (a foreign message nothing else caught) is not an overlap:
    it exists to catch what the other rules leave alone."""
    return then.action in ("escalate", "block") and not then.fallback


def _report(results: list[CaseResult]) -> TestReport:
    passed = sum(r.passed for r in results)
    return TestReport(passed=passed, failed=len(results) - passed, results=tuple(results))


def with_example_counts(engine: PolicyEngine, report: TestReport, minimum: int) -> TestReport:
    """Strict mode: a rule with fewer than `minimum` match or no_match examples fails too,
    because an untested phrase list is how a guardrail silently stops holding."""
    results = list(report.results)
    for loaded in engine.rules.rules:
        rule = loaded.rule
        if not rule.enabled:
            continue
        for kind, examples in (
            ("match", rule.examples.match),
            ("no_match", rule.examples.no_match),
        ):
            if len(examples) < minimum:
                results.append(
                    CaseResult(
                        id=f"{rule.id}/{kind}",
                        passed=False,
                        action="-",
                        reasons=(),
                        rule_ids=(),
                        expected=f"at least {minimum} {kind} examples, found {len(examples)}",
                    )
                )
    return _report(results)
