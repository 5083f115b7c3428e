"""Rule files for people: the no_match cross-check, rule ids protected without a hand list,
load errors that point at the line and say what to write, and invalid cases files."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest
import yaml

from fte_core.errors import RuleError
from fte_core.models import Channel
from fte_core.policy import PolicyEngine, build_ruleset, load_rules
from fte_core.policy.loader import parse_rule_file
from service.cli import main

ROOT = Path(__file__).resolve().parents[2]


def _rule(
    rule_id: str, stage: str, when: dict[str, object], then: dict[str, str], **ex: list[str]
) -> dict[str, object]:
    return {
        "id": rule_id,
        "stage": stage,
        "description": "d",
        "when": when,
        "then": then,
        "examples": {"match": ex.get("match", []), "no_match": ex.get("no_match", [])},
    }


REFUND = _rule(
    "refund-words",
    "input",
    {"any_phrases": ["refund*"]},
    {"action": "escalate", "reason": "refund"},
    match=["I want a refund"],
    no_match=["I want my money back"],  # the money rule catches it: an overlap
)
MONEY = _rule(
    "money-back",
    "input",
    {"any_phrases": ["money back"]},
    {"action": "escalate", "reason": "refund"},
    match=["money back please"],
    no_match=["how do I go back"],
)
TAG = _rule(
    "tag-billing",
    "input",
    {"any_phrases": ["invoice"]},
    {"action": "tag", "tag": "billing"},
    match=["my invoice"],
    no_match=["please refund me"],  # refund-words escalates it: an overlap too
)
LEAK = _rule(
    "leak-rule-text",
    "output",
    {"quotes_rules": True},
    {"action": "block", "reason": "prompt_leak"},
    match=["blocked by refund-words"],
    no_match=["Open Settings > Export."],
)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _write(directory: Path, *rules: dict[str, object]) -> Path:
    directory.mkdir(exist_ok=True)
    (directory / "main.yaml").write_text(yaml.safe_dump({"rules": list(rules)}), encoding="utf-8")
    return directory


# --- no_match examples against the whole rule set -----------------------------------------


def test_no_match_examples_another_rule_catches_are_warnings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = str(_write(tmp_path / "rules", REFUND, MONEY, TAG))
    code, out, _ = _run(capsys, "rules", "test", "--rules", rules)
    assert code == 0
    lines = out.splitlines()
    assert lines[-1] == "6 passed, 0 failed, 2 warnings"
    assert lines[0].startswith("WARN refund-words/no_match/1: caught by another rule [money-back]")
    assert lines[1].startswith("WARN tag-billing/no_match/1: caught by another rule [refund-words]")


def test_strict_makes_overlaps_failures_and_json_lists_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = str(_write(tmp_path / "rules", REFUND, MONEY))
    code, out, _ = _run(capsys, "rules", "test", "--rules", rules, "--strict", "--json")
    assert code == 1
    report = json.loads(out)
    assert report["overlaps"] == [
        {
            "example": "refund-words/no_match/1",
            "text": "I want my money back",
            "caught_by": ["money-back"],
            "reasons": ["refund"],
        }
    ]
    assert report["failed"] == 1 + 4  # the overlap, and four lists with under 6 examples


def test_a_tag_rule_catching_a_no_match_example_is_no_overlap(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tag = TAG | {"examples": {"match": ["my invoice"], "no_match": ["hello"]}}
    refund = REFUND | {"examples": {"match": ["a refund"], "no_match": ["invoice please"]}}
    code, out, _ = _run(
        capsys, "rules", "test", "--rules", str(_write(tmp_path / "r", refund, tag))
    )
    assert code == 0
    assert "WARN" not in out


# --- rule ids protected automatically --------------------------------------------------


def test_every_loaded_rule_id_is_protected_without_a_list(tmp_path: Path) -> None:
    disabled = MONEY | {"id": "brand-new-rule", "enabled": False}
    one_word = TAG | {"id": "billing"}
    engine = PolicyEngine(load_rules(_write(tmp_path / "rules", REFUND, disabled, one_word, LEAK)))
    try:
        for draft in (
            "This was decided by brand-new-rule.",  # a disabled rule's id too
            "your msg hit refund-words lol",
            "reason: human_request",
            "the rule reads any_phrases and model_flags_any",
            "it was a leak-rule-text decision",
        ):
            decision = engine.evaluate("output", draft, Channel.WHATSAPP)
            assert decision.rule_ids == ("leak-rule-text",), draft
        for draft in (
            "Billing questions go to our billing team.",  # a one-word id is a word
            "Refund words are not something I can discuss.",
            "The human-readable id is next to the title.",
        ):
            assert engine.evaluate("output", draft, Channel.EMAIL).action == "allow", draft
    finally:
        engine.close()


def test_the_shipped_leak_rule_protects_every_shipped_id() -> None:
    engine = PolicyEngine(load_rules(ROOT / "rules"))
    try:
        ids = [r.rule.id for r in engine.rules.rules]
        leak = next(r.rule for r in engine.rules.rules if r.rule.id == "leak-rule-text")
        written = msgspec.json.encode(leak.when).decode()
        assert [i for i in ids if i in written] == []  # no hand-kept list
        for loaded in engine.rules.rules:
            draft = f"Dear Ana, that was rule {loaded.rule.id}. Kind regards, Tasklane Support"
            decision = engine.evaluate("output", draft, Channel.EMAIL)
            assert "leak-rule-text" in decision.rule_ids, loaded.rule.id
    finally:
        engine.close()


# --- load errors for people ------------------------------------------------------------

BASE = """rules:
  - id: r-one
    stage: {stage}
    description: d
    when:
      any_phrases:
        - refund
        - {phrase}
    then:
      action: {action}
      reason: {reason}
"""


def _error(**changes: str) -> RuleError:
    values = {"stage": "input", "phrase": "money back", "action": "escalate", "reason": "refund"}
    with pytest.raises(RuleError) as info:
        parse_rule_file("f.yaml", BASE.format(**(values | changes)))
    return info.value


@pytest.mark.parametrize(
    ("change", "line", "words"),
    [
        ({"stage": "inptu"}, 3, ["`stage` cannot be 'inptu'", "allowed values: input, output"]),
        ({"action": "escalat"}, 10, ["allowed values: escalate, set_priority, tag, block"]),
        ({"action": "block"}, 10, ["`action: block` is not allowed at stage `input`"]),
        ({"reason": "refnd"}, 11, ["`reason` must be one of", "'refund'", "got 'refnd'"]),
        ({"phrase": "1.0"}, 8, ["YAML reads `1.0` as a number", "'1.0'"]),
        ({"phrase": "404"}, 8, ["YAML reads `404` as a number", "'404'"]),
        ({"phrase": "on"}, 8, ["YAML reads `on` as yes/no", "'on'"]),
    ],
)
def test_load_errors_point_at_the_value_and_say_what_to_write(
    change: dict[str, str], line: int, words: list[str]
) -> None:
    error = _error(**change)
    assert (error.file, error.line, error.rule_id) == ("f.yaml", line, "r-one")
    for word in words:
        assert word in error.detail


def test_an_unknown_key_points_at_its_line_and_lists_the_keys() -> None:
    text = BASE.format(stage="input", phrase="x", action="escalate", reason="refund")
    with pytest.raises(RuleError) as info:
        parse_rule_file(
            "f.yaml", text.replace("    then:", "      sentiment_bellow: 0.2\n    then:")
        )
    assert info.value.line == 9
    assert "unknown field `sentiment_bellow`" in info.value.detail
    assert "allowed keys here: any_phrases, all_phrases, patterns" in info.value.detail
    assert "sentiment_below" in info.value.detail
    with pytest.raises(RuleError) as info:
        parse_rule_file(
            "f.yaml",
            text.replace("      reason: refund", "      reason: refund\n      urgncy: high"),
        )
    assert info.value.line == 12
    assert (
        "allowed keys here: action, reason, urgency, priority, tag, fallback" in info.value.detail
    )


def test_an_invalid_pattern_is_shown_as_written_on_its_line() -> None:
    text = BASE.format(stage="input", phrase="x", action="escalate", reason="refund")
    text = text.replace(
        "      any_phrases:\n        - refund\n        - x\n",
        "      patterns:\n        - '\\bok\\b'\n        - '\\b(refund\\b'\n",
    )
    with pytest.raises(RuleError) as info:
        parse_rule_file("f.yaml", text)
    assert info.value.line == 8
    assert info.value.detail.startswith("invalid pattern (missing ), unterminated subpattern")
    assert info.value.detail.endswith(": '\\b(refund\\b'")


def test_a_bad_label_in_an_example_names_its_line() -> None:
    rule = LEAK | {"examples": {"match": [{"text": "x", "model_flags": ["refunds"]}]}}
    text = yaml.safe_dump({"rules": [rule]}, sort_keys=False)
    with pytest.raises(RuleError) as info:
        build_ruleset([("f.yaml", text)])
    assert info.value.line == 1 + text.splitlines().index("      - refunds")
    assert "`model_flags` cannot be 'refunds'" in info.value.detail


# --- invalid cases files ---------------------------------------------------------------


def _case(stage: str, action: str, reason: str | None = None) -> str:
    expect = {"action": action} | ({"reason": reason} if reason else {})
    return json.dumps(
        {"id": "c1", "stage": stage, "channel": "email", "text": "x", "expect": expect}
    )


@pytest.mark.parametrize(
    ("content", "line", "words"),
    [
        (_case("input", "block"), 1, "`expect.action` 'block' is impossible on the input stage"),
        (_case("output", "escalate"), 1, "(allowed: block, allow)"),
        (_case("input", "escalate", "refnd"), 1, "`expect.reason` 'refnd' is unknown"),
        (_case("input", "escalate", "prompt_leak"), 1, "unknown on the input stage"),
        (_case("input", "allow", "refund"), 1, "not 'allow'"),
        ("\n\n", None, "no cases"),
    ],
)
def test_invalid_cases_files_exit_2_in_text_and_json(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: str,
    line: int | None,
    words: str,
) -> None:
    rules = str(_write(tmp_path / "rules", REFUND, MONEY))
    cases = tmp_path / "cases.jsonl"
    cases.write_text(content, encoding="utf-8")
    code, out, err = _run(capsys, "rules", "test", str(cases), "--rules", rules)
    assert code == 2
    assert out == ""
    where = str(cases) if line is None else f"{cases}:{line}"
    assert err.startswith(f"error: {where}: ")
    assert words in err
    code, out, _ = _run(capsys, "rules", "test", str(cases), "--rules", rules, "--json")
    assert code == 2
    error = json.loads(out)["error"]
    assert error["file"] == str(cases)
    assert error.get("line") == line
    assert words in error["message"]


def test_a_cases_file_can_give_the_model_labels(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    case = {
        "id": "labelled",
        "stage": "output",
        "channel": "email",
        "text": "Open Settings > Export.",
        "model_flags": ["legal"],
        "expect": {"action": "block", "reason": "legal"},
    }
    cases = tmp_path / "cases.jsonl"
    cases.write_text(json.dumps(case) + "\n", encoding="utf-8")
    shipped = str(ROOT / "rules")
    code, out, _ = _run(capsys, "rules", "test", str(cases), "--rules", shipped)
    assert (code, out.splitlines()[-1]) == (0, "1 passed, 0 failed")
