"""PolicyEngine decisions: reason order, priorities, tags, features and engine limits."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

import pytest
import yaml

from fte_core.errors import RuleLimitError
from fte_core.models import Channel, Priority
from fte_core.policy.durable import MAX_DNF_TERMS, MAX_FIELDS, _fired_rule
from fte_core.policy.engine import NEUTRAL, PolicyEngine, features
from fte_core.policy.loader import RuleSet, build_ruleset

Rule = dict[str, object]
Make = Callable[[RuleSet], PolicyEngine]


def _rule(
    rule_id: str, when: Mapping[str, object], then: Mapping[str, object], stage: str = "input"
) -> Rule:
    return {"id": rule_id, "stage": stage, "description": rule_id, "when": when, "then": then}


def _escalate(rule_id: str, phrase: str, reason: str, urgency: str | None = None) -> Rule:
    then: dict[str, object] = {"action": "escalate", "reason": reason}
    if urgency:
        then["urgency"] = urgency
    return _rule(rule_id, {"any_phrases": [phrase]}, then)


def _ruleset(*files: list[Rule]) -> RuleSet:
    return build_ruleset(
        [(f"{i}.yaml", yaml.safe_dump({"rules": rules})) for i, rules in enumerate(files)]
    )


@pytest.fixture(params=[True, False], ids=["durable_rules", "reference"])
def make_engine(request: pytest.FixtureRequest) -> Iterator[Make]:
    """Both evaluators must pass every test here."""
    engines: list[PolicyEngine] = []

    def make(rules: RuleSet) -> PolicyEngine:
        engine = PolicyEngine(rules, use_durable=request.param)
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.close()


def test_reasons_by_urgency_then_file_order(make_engine: Make) -> None:
    rules = _ruleset(
        [
            _escalate("price-rule", "price", "pricing", "high"),
            _escalate("human-rule", "human", "human_request"),
        ],
        [
            _escalate("legal-rule", "lawyer", "legal", "critical"),
            _escalate("refund-rule", "refund", "refund", "high"),
        ],
    )
    engine = make_engine(rules)
    decision = engine.evaluate("input", "human! refund, price, lawyer", Channel.EMAIL)
    assert decision.action == "escalate"
    assert decision.reasons == ("legal", "pricing", "refund", "human_request")
    assert decision.rule_ids == ("price-rule", "human-rule", "legal-rule", "refund-rule")
    assert decision.urgency == Priority.CRITICAL
    assert decision.ruleset_version == rules.version
    assert decision.error is None


def test_one_reason_from_two_rules_is_listed_once(make_engine: Make) -> None:
    engine = make_engine(
        _ruleset([_escalate("r-one", "refund", "refund"), _escalate("r-two", "money", "refund")])
    )
    decision = engine.evaluate("input", "refund my money", Channel.EMAIL)
    assert decision.reasons == ("refund",)
    assert decision.rule_ids == ("r-one", "r-two")
    assert decision.urgency == Priority.NORMAL


def test_set_priority_picks_the_highest_and_tags_are_sorted(make_engine: Make) -> None:
    engine = make_engine(
        _ruleset(
            [
                _rule(
                    "p-low",
                    {"any_phrases": ["slow"]},
                    {"action": "set_priority", "priority": "low"},
                ),
                _rule(
                    "p-high",
                    {"any_phrases": ["down"]},
                    {"action": "set_priority", "priority": "high"},
                ),
                _rule(
                    "p-norm",
                    {"any_phrases": ["app"]},
                    {"action": "set_priority", "priority": "normal"},
                ),
                _rule("t-zed", {"any_phrases": ["app"]}, {"action": "tag", "tag": "zed"}),
                _rule("t-api", {"any_phrases": ["down"]}, {"action": "tag", "tag": "api"}),
                _rule("t-api-2", {"any_phrases": ["slow"]}, {"action": "tag", "tag": "api"}),
            ]
        )
    )
    decision = engine.evaluate("input", "the app is slow and down", Channel.EMAIL)
    assert decision.action == "allow"
    assert decision.reasons == ()
    assert decision.priority == Priority.HIGH
    assert decision.tags == ("api", "zed")
    assert decision.urgency is None
    quiet = engine.evaluate("input", "hello", Channel.EMAIL)
    assert (quiet.priority, quiet.tags, quiet.rule_ids) == (None, (), ())


def test_conditions(make_engine: Make) -> None:
    then = {"action": "escalate", "reason": "refund"}
    engine = make_engine(
        _ruleset(
            [
                _rule("all-phrases", {"all_phrases": ["cancel", "money"]}, then),
                _rule("channel-only", {"any_phrases": ["ping"], "channel_in": ["whatsapp"]}, then),
                _rule(
                    "not-thanks",
                    {"any_phrases": ["pong"], "not": {"any_phrases": ["thanks"]}},
                    then,
                ),
                _rule("pattern", {"patterns": [r"order #\d{4}\b"]}, then),
                _rule("angry", {"sentiment_below": 0.2}, then),
                _rule(
                    "nested",
                    {
                        "any": [
                            {"all": [{"any_phrases": ["alpha"]}, {"any_phrases": ["beta"]}]},
                            {"sentiment_above": 0.99},
                        ]
                    },
                    then,
                ),
            ]
        )
    )

    def fired(
        text: str, channel: Channel = Channel.EMAIL, sentiment: float = NEUTRAL
    ) -> tuple[str, ...]:
        return engine.evaluate("input", text, channel, sentiment=sentiment).rule_ids

    assert fired("cancel and give money") == ("all-phrases",)
    assert fired("cancel only") == ()
    assert fired("ping", Channel.WHATSAPP) == ("channel-only",)
    assert fired("ping", Channel.EMAIL) == ()
    assert fired("pong") == ("not-thanks",)
    assert fired("pong, thanks") == ()
    assert fired("ORDER #1234 missing") == ("pattern",)  # patterns see the normalised text
    assert fired("order #12345") == ()
    assert fired("hi", sentiment=0.1) == ("angry",)
    assert fired("hi", sentiment=0.2) == ()  # strictly below
    assert fired("alpha beta") == ("nested",)
    assert fired("alpha") == ()
    assert fired("hi", sentiment=1.0) == ("nested",)


def test_output_stage_blocks(make_engine: Make) -> None:
    engine = make_engine(
        _ruleset(
            [
                _rule(
                    "amount",
                    {"patterns": [r"[$€£]\s?\d"]},
                    {"action": "block", "reason": "pricing_disclosure"},
                    "output",
                ),
                _rule(
                    "promise",
                    {"any_phrases": ["guarantee*"]},
                    {"action": "block", "reason": "unapproved_commitment", "urgency": "high"},
                    "output",
                ),
            ]
        )
    )
    decision = engine.evaluate("output", "We guarantee it costs $49.", Channel.EMAIL)
    assert decision.stage == "output"
    assert decision.action == "block"
    assert decision.reasons == ("unapproved_commitment", "pricing_disclosure")
    assert engine.evaluate("output", "Open Settings.", Channel.EMAIL).action == "allow"
    assert engine.evaluate("input", "We guarantee $49", Channel.EMAIL).action == "allow"


def test_sentiment_is_computed_only_when_a_rule_needs_it() -> None:
    feats = features("I hate this, it is the worst", Channel.EMAIL)
    assert feats.sentiment < 0.3
    assert feats.normalized == "i hate this, it is the worst"
    assert features("x", Channel.EMAIL, sentiment=0.7).sentiment == 0.7
    engine = PolicyEngine(
        _ruleset(
            [
                _rule(
                    "angry",
                    {"sentiment_below": 0.3},
                    {"action": "escalate", "reason": "negative_sentiment"},
                )
            ]
        )
    )
    try:
        assert (
            engine.evaluate("input", "I hate this, it is the worst", Channel.EMAIL).action
            == "escalate"
        )
        assert engine.evaluate("input", "Thanks, great app", Channel.EMAIL).action == "allow"
    finally:
        engine.close()


def test_unknown_stage_is_an_error() -> None:
    engine = PolicyEngine(_ruleset([_escalate("aa", "x", "refund")]), use_durable=False)
    with pytest.raises(ValueError, match="unknown stage"):
        engine.evaluate("middle", "x", Channel.EMAIL)


def test_too_many_alternatives_is_a_limit_error() -> None:
    any_of = [{"any": [{"any_phrases": [f"w{i}a"]}, {"any_phrases": [f"w{i}b"]}]} for i in range(6)]
    rules = _ruleset([_rule("wide-rule", {"all": any_of}, {"action": "tag", "tag": "x"})])
    assert MAX_DNF_TERMS < 2**6
    with pytest.raises(RuleLimitError) as info:
        PolicyEngine(rules)
    assert info.value.rule_id == "wide-rule"
    assert "alternatives" in info.value.detail
    PolicyEngine(rules, use_durable=False).close()  # the reference has no such limit


def test_too_many_text_atoms_is_a_limit_error() -> None:
    rules = _ruleset(
        [
            _rule(f"r{i:03d}", {"all_phrases": [f"word{i}"]}, {"action": "tag", "tag": "x"})
            for i in range(MAX_FIELDS)
        ]
    )
    with pytest.raises(RuleLimitError, match="text atoms"):
        PolicyEngine(rules)


def test_too_many_tests_on_one_feature_is_a_limit_error() -> None:
    rules = _ruleset(
        [
            _rule(f"r{i:03d}", {"sentiment_below": 0.5}, {"action": "tag", "tag": "x"})
            for i in range(401)
        ]
    )
    with pytest.raises(RuleLimitError, match="tests on feature 's'"):
        PolicyEngine(rules)


def test_close_is_idempotent() -> None:
    engine = PolicyEngine(_ruleset([_escalate("aa", "x", "refund")]))
    engine.close()
    engine.close()
    decision = engine.evaluate("input", "x marks the spot", Channel.EMAIL)
    assert (decision.action, decision.evaluator) == ("escalate", "reference")  # engine gone


def test_a_condition_too_long_for_the_engine_is_a_limit_error() -> None:
    """durable_rules allows 32 expressions per conjunction (error 113 at registration)."""
    wide = {"all": [{"any_phrases": [f"w{i}"], "sentiment_above": i / 100} for i in range(20)]}
    rules = _ruleset([_rule("wide-and", wide, {"action": "tag", "tag": "x"})])
    with pytest.raises(RuleLimitError) as info:
        PolicyEngine(rules)
    assert info.value.rule_id == "wide-and"


def test_no_message_leaves_anything_for_the_next() -> None:
    """durable_rules reuses one session per stage (each message's fact is retracted after
    its rules ran): a message that fires must not make the next one fire, in any order."""
    rules = _ruleset(
        [
            _escalate("refund-rule", "refund", "refund"),
            _escalate("human-rule", "human", "human_request"),
            _rule("calm", {"not": {"any_phrases": ["refund"]}}, {"action": "tag", "tag": "calm"}),
        ]
    )
    engine = PolicyEngine(rules)
    texts = ["refund now", "hello", "a human please", "refund or a human", "thanks"] * 40
    expected = {
        "refund now": ("refund-rule",),
        "hello": ("calm",),
        "a human please": ("human-rule", "calm"),
        "refund or a human": ("refund-rule", "human-rule"),
        "thanks": ("calm",),
    }
    try:
        for text in texts:
            decision = engine.evaluate("input", text, Channel.WEB_FORM)
            assert (decision.evaluator, decision.rule_ids) == ("durable_rules", expected[text])
    finally:
        engine.close()


def test_an_engine_action_is_read_by_its_one_key_and_a_malformed_one_is_an_error() -> None:
    """The rule name is the action's only key, read as JSON (a quote inside the fact
    cannot shift it); anything else is the engine misbehaving, not a silent allow."""
    assert _fired_rule('{"r13":{"m":{"fte_msg":1,"lg":"a\\"b"}}}') == "r13"
    with pytest.raises(RuntimeError, match="malformed"):
        _fired_rule('{"r13":')
    with pytest.raises(RuntimeError, match="naming 2 rules"):
        _fired_rule('{"r1":{},"r2":{}}')
