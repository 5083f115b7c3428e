"""Rule-file schema errors: compliance staff must see the file, line and rule id."""

from __future__ import annotations

import pytest

from fte_core.errors import RuleError
from fte_core.models import Channel
from fte_core.policy.loader import build_ruleset, parse_rule_file
from fte_core.policy.schema import Condition, Example, example_text

TEMPLATE = """rules:
  - id: first-rule
    stage: input
    description: A valid rule before the broken one.
    when: {any_phrases: [refund]}
    then: {action: escalate, reason: refund}
  - id: second-rule
    stage: STAGE
    description: The rule under test.
    when:
      WHEN
    then: THEN
"""
ESCALATE = "{action: escalate, reason: refund}"


def _file(when: str = "any_phrases: [x]", then: str = ESCALATE, stage: str = "input") -> str:
    return TEMPLATE.replace("STAGE", stage).replace("WHEN", when).replace("THEN", then)


def _error(text: str) -> RuleError:
    with pytest.raises(RuleError) as info:
        parse_rule_file("broken.yaml", text)
    return info.value


def test_a_valid_file_parses_with_lines() -> None:
    loaded = parse_rule_file("ok.yaml", _file())
    assert [(r.rule.id, r.file, r.line) for r in loaded] == [
        ("first-rule", "ok.yaml", 2),
        ("second-rule", "ok.yaml", 7),
    ]


@pytest.mark.parametrize(
    ("kwargs", "line", "detail"),
    [
        ({"when": "any_phrase: [x]"}, 11, "unknown field `any_phrase`"),
        ({"then": "{action: block, reason: refund}"}, 12, "`action: block` is not allowed"),
        ({"then": "{action: escalate, reason: money}"}, 12, "`reason` must be one of"),
        ({"stage": "output", "then": "{action: escalate, reason: refund}"}, 12, "not allowed"),
        ({"stage": "output", "then": "{action: block, reason: refund}"}, 12, "`reason`"),
        ({"then": "{action: set_priority}"}, 7, "needs `priority`"),
        ({"then": "{action: tag}"}, 7, "needs `tag`"),
        ({"then": "{action: tag, tag: 'Not A Tag'}"}, 12, "regex"),
        ({"when": "{}"}, 11, "needs at least one test"),
        ({"when": "any_phrases: []"}, 11, "must not be empty"),
        ({"when": "patterns: ['(unclosed']"}, 11, "invalid pattern"),
        ({"when": "sentiment_below: 1.5"}, 11, "<= 1.0"),
        ({"when": "channel_in: [fax]"}, 11, "`channel_in` cannot be 'fax'; allowed values: email"),
        ({"when": "any_phrases: ['*']"}, 11, "bare `*`"),
        ({"when": "all: [{}]"}, 11, "needs at least one test"),
        ({"stage": "middle"}, 8, "`stage` cannot be 'middle'; allowed values: input, output"),
    ],
)
def test_schema_errors_name_file_line_and_rule(
    kwargs: dict[str, str], line: int, detail: str
) -> None:
    error = _error(_file(**kwargs))
    assert (error.file, error.line, error.rule_id) == ("broken.yaml", line, "second-rule")
    assert detail in error.detail
    assert str(error).startswith(f"broken.yaml:{line}: rule 'second-rule': ")


def test_bad_rule_id() -> None:
    error = _error(_file().replace("second-rule", "Second Rule"))
    assert (error.line, error.rule_id) == (7, "Second Rule")
    assert "regex" in error.detail


def test_invalid_yaml_names_the_line() -> None:
    error = _error("rules:\n  - id: x\n   bad: [\n")
    assert (error.file, error.line) == ("broken.yaml", 3)
    assert "not valid YAML" in error.detail


@pytest.mark.parametrize(
    ("text", "detail"),
    [("rule: []\n", "unknown field `rule`"), ("{}\n", "missing required field `rules`")],
)
def test_top_level_shape(text: str, detail: str) -> None:
    error = _error(text)
    assert (error.file, error.line) == ("broken.yaml", 1)
    assert detail in error.detail


def test_duplicate_ids_across_files() -> None:
    one = _file()
    two = _file().replace("first-rule", "third-rule")
    with pytest.raises(RuleError) as info:
        build_ruleset([("a.yaml", one), ("b.yaml", two)])
    error = info.value
    assert (error.file, error.line, error.rule_id) == ("b.yaml", 7, "second-rule")
    assert "first defined in a.yaml:7" in error.detail


def test_no_files() -> None:
    with pytest.raises(RuleError, match="no rule files"):
        build_ruleset([])


def test_not_is_spelled_not_in_yaml() -> None:
    loaded = parse_rule_file("ok.yaml", _file(when="not: {any_phrases: [thanks]}"))
    condition = loaded[1].rule.when
    assert condition.not_ == Condition(any_phrases=("thanks",))


def test_condition_needs_a_test() -> None:
    with pytest.raises(ValueError, match="at least one test"):
        Condition()


def test_example_text_defaults_to_email() -> None:
    assert example_text("hi") == ("hi", Channel.EMAIL)
    assert example_text(Example(text="yo", channel=Channel.WHATSAPP)) == ("yo", Channel.WHATSAPP)
