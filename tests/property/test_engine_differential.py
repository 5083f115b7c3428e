"""durable_rules against the pure-Python reference evaluator, reload and fail-safe behaviour.

The reference evaluator is the oracle: on random rule sets and random messages both must
reach the same Decision (apart from which evaluator produced it).
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import msgspec
import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from fte_core.errors import RuleError, RuleLimitError
from fte_core.models import Channel, Decision
from fte_core.policy.durable import DurableStage
from fte_core.policy.engine import PolicyEngine
from fte_core.policy.loader import RuleSet, build_ruleset, load_rules
from tests import strategies as s

STAGES = ("input", "output")


def _same(a: Decision, b: Decision) -> bool:
    return msgspec.structs.replace(a, evaluator="") == msgspec.structs.replace(b, evaluator="")


@settings(
    deadline=None,
    max_examples=60,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(
    files=s.rule_files(),
    messages=st.lists(
        st.tuples(s.vocabulary_message(), s.channels(), s.sentiments()), min_size=1, max_size=8
    ),
)
def test_durable_rules_equals_reference(
    files: list[tuple[str, str]], messages: list[tuple[str, Channel, float]]
) -> None:
    rules = build_ruleset(files)
    try:
        durable = PolicyEngine(rules)
    except RuleLimitError:  # refused loudly at load (error 113 etc.): never served
        assume(False)
        raise
    reference = PolicyEngine(rules, use_durable=False)
    try:
        for text, channel, sentiment in messages:
            for stage in STAGES:
                got = durable.evaluate(stage, text, channel, sentiment=sentiment)
                want = reference.evaluate(stage, text, channel, sentiment=sentiment)
                assert got.evaluator == "durable_rules", got.error
                assert want.evaluator == "reference"
                assert _same(got, want), (text, channel, sentiment, got, want)
    finally:
        durable.close()


def _threshold_rules(value: float) -> RuleSet:
    rules = [
        {
            "id": "below",
            "stage": "input",
            "description": "below",
            "when": {"sentiment_below": value},
            "then": {"action": "escalate", "reason": "negative_sentiment"},
        },
        {
            "id": "above",
            "stage": "input",
            "description": "above",
            "when": {"sentiment_above": value},
            "then": {"action": "tag", "tag": "happy"},
        },
        {
            "id": "not-below",
            "stage": "input",
            "description": "not below",
            "when": {"not": {"sentiment_below": value}},
            "then": {"action": "set_priority", "priority": "low"},
        },
    ]
    return build_ruleset(s.files_for(rules))


@pytest.mark.parametrize("value", [*s.THRESHOLDS, 0.0001, 0.9999, 0.3333])
def test_sentiment_exactly_at_a_threshold(value: float) -> None:
    rules = _threshold_rules(value)
    durable = PolicyEngine(rules)
    reference = PolicyEngine(rules, use_durable=False)
    try:
        for score in (value, max(0.0, value - 1e-12), min(1.0, value + 1e-12)):
            got = durable.evaluate("input", "hi", Channel.EMAIL, sentiment=score)
            want = reference.evaluate("input", "hi", Channel.EMAIL, sentiment=score)
            assert _same(got, want), (score, got, want)
        at = durable.evaluate("input", "hi", Channel.EMAIL, sentiment=value)
        assert at.rule_ids == ("not-below",)  # strict comparisons on both sides
    finally:
        durable.close()


def _phrase_rules(phrase: str, reason: str) -> str:
    rule = {
        "id": "only",
        "stage": "input",
        "description": "one phrase",
        "when": {"any_phrases": [phrase]},
        "then": {"action": "escalate", "reason": reason, "urgency": "high"},
    }
    return yaml.safe_dump({"rules": [rule]})


def test_reload_a_bounded_number_of_times_keeps_deciding() -> None:
    words = [("refund", "refund"), ("lawyer", "legal"), ("price", "pricing")]
    engine = PolicyEngine(build_ruleset([("a.yaml", _phrase_rules(*words[0]))]))
    try:
        for i in range(30):
            phrase, reason = words[i % 3]
            engine.reload(build_ruleset([("a.yaml", _phrase_rules(phrase, reason))]))
            hit = engine.evaluate("input", f"about the {phrase} please", Channel.EMAIL)
            miss = engine.evaluate("input", f"about the {words[(i + 1) % 3][0]}", Channel.EMAIL)
            assert (hit.action, hit.reasons, hit.evaluator) == (
                "escalate",
                (reason,),
                "durable_rules",
            )
            assert miss.action == "allow"
            assert hit.ruleset_version == engine.version
    finally:
        engine.close()


def test_broken_file_on_reload_keeps_the_old_version(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(_phrase_rules("refund", "refund"), encoding="utf-8")
    engine = PolicyEngine(load_rules(tmp_path))
    old = engine.version
    try:
        assert engine.reload_directory(str(tmp_path)) is False  # unchanged: no reload
        (tmp_path / "b.yaml").write_text("rules:\n  - id: x\n    stage: nope\n", encoding="utf-8")
        with pytest.raises(RuleError):
            engine.reload_directory(str(tmp_path))
        assert engine.version == old
        decision = engine.evaluate("input", "a refund please", Channel.EMAIL)
        assert (decision.action, decision.ruleset_version) == ("escalate", old)
        (tmp_path / "b.yaml").write_text(_phrase_rules("lawyer", "legal").replace("only", "other"))
        assert engine.reload_directory(str(tmp_path)) is True
        assert engine.version != old
        assert engine.evaluate("input", "my lawyer", Channel.EMAIL).reasons == ("legal",)
    finally:
        engine.close()


@pytest.fixture
def refund_engine() -> Iterator[PolicyEngine]:
    engine = PolicyEngine(build_ruleset([("a.yaml", _phrase_rules("refund", "refund"))]))
    yield engine
    engine.close()


def _durable_stage(engine: PolicyEngine, stage: str) -> DurableStage:
    compiled = engine._current
    assert compiled is not None
    return compiled.stage(stage)


def _boom(*_: object) -> set[str]:
    raise RuntimeError("injected fault")


def test_durable_failure_falls_back_to_the_reference(
    refund_engine: PolicyEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_durable_stage(refund_engine, "input"), "fired", _boom)
    decision = refund_engine.evaluate("input", "a refund please", Channel.WHATSAPP)
    assert (decision.action, decision.reasons) == ("escalate", ("refund",))
    assert decision.evaluator == "reference"
    assert decision.error is not None
    assert "injected fault" in decision.error
    calm = refund_engine.evaluate("input", "how do boards work", Channel.WHATSAPP)
    assert (calm.action, calm.evaluator) == ("allow", "reference")


@pytest.mark.parametrize(("stage", "action"), [("input", "escalate"), ("output", "block")])
def test_both_evaluators_failing_never_fails_open(
    monkeypatch: pytest.MonkeyPatch, stage: str, action: str
) -> None:
    rules = build_ruleset([("a.yaml", _phrase_rules("refund", "refund"))])
    engine = PolicyEngine(rules, reference=_boom)
    try:
        monkeypatch.setattr(_durable_stage(engine, stage), "fired", _boom)
        decision = engine.evaluate(stage, "how do boards work", Channel.EMAIL)
    finally:
        engine.close()
    assert decision.action == action
    assert decision.reasons == ("policy_error",)
    assert decision.evaluator == "failsafe"
    assert decision.error is not None
    assert decision.ruleset_version == engine.version


def test_concurrent_evaluations_match_sequential() -> None:
    rules = load_rules(Path(__file__).resolve().parents[2] / "rules")
    engine = PolicyEngine(rules)
    texts = [
        ("I want a refund", Channel.EMAIL),
        ("talk to a human pls", Channel.WHATSAPP),
        ("how do I export a board?", Channel.WEB_FORM),
        ("my lawyer will contact you", Channel.EMAIL),
        ("this is the worst app ever, useless", Channel.WHATSAPP),
    ]
    try:
        expected = {m: engine.evaluate("input", m[0], m[1]) for m in texts}

        def work(worker: int) -> list[bool]:
            results = []
            for i in range(500):
                message = texts[(i + worker) % len(texts)]
                results.append(
                    engine.evaluate("input", message[0], message[1]) == expected[message]
                )
            return results

        with ThreadPoolExecutor(max_workers=8) as pool:
            outcomes = [ok for batch in pool.map(work, range(8)) for ok in batch]
        assert len(outcomes) == 4000
        assert all(outcomes)
    finally:
        engine.close()


@pytest.mark.parametrize("score", [1e-7, 5e-324, 1e-300, 2e-05, 1.5e-10])
def test_tiny_scores_are_evaluated_by_durable_rules(score: float) -> None:
    """json writes these as 1e-07, which durable_rules cannot parse (error 204)."""
    rules = _threshold_rules(0.15)
    durable = PolicyEngine(rules)
    reference = PolicyEngine(rules, use_durable=False)
    try:
        got = durable.evaluate("input", "hi", Channel.EMAIL, sentiment=score)
        want = reference.evaluate("input", "hi", Channel.EMAIL, sentiment=score)
        assert (got.evaluator, got.error) == ("durable_rules", None)
        assert _same(got, want)
    finally:
        durable.close()


@pytest.mark.parametrize("value", [1e-05, 1e-9, 5e-05, 0.1 + 0.2])
def test_thresholds_the_engine_cannot_represent_are_refused_at_load(value: float) -> None:
    """A threshold like 1e-05 once made PolicyEngine() die inside durable_rules (error 204)."""
    with pytest.raises(RuleError):
        PolicyEngine(_threshold_rules(value)).close()


@settings(deadline=None, max_examples=300)
@given(data=st.data())
def test_compiled_checks_equal_the_tree_walk(data: st.DataObject) -> None:
    """The reference evaluator's closures (check_of) decide as the plain tree walk does."""
    from fte_core.policy.reference import Facts, check_of, holds

    rules = load_rules(Path(__file__).resolve().parents[2] / "rules")
    for stage in (rules.input, rules.output):
        facts = Facts(
            atoms=tuple(
                data.draw(
                    st.lists(st.booleans(), min_size=len(stage.atoms), max_size=len(stage.atoms))
                )
            ),
            sentiment=data.draw(st.floats(0, 1)),
            channel=data.draw(s.channels()),
            language=data.draw(st.sampled_from(["en", "es", "fr", "de", "pt", "it", "other"])),
            similarity=tuple(data.draw(st.integers(0, 10_000)) for _ in stage.similarity),
        )
        for rule in stage.rules:
            assert check_of(rule.condition)(facts) == holds(rule.condition, facts), rule.id
