"""Loading rule directories: versions, ordering, disabled rules, unreadable files."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from fte_core.errors import RuleError
from fte_core.policy.loader import build_ruleset, load_rules


def _rule(rule_id: str, phrase: str = "refund", **extra: object) -> dict[str, object]:
    return {
        "id": rule_id,
        "stage": "input",
        "description": f"rule {rule_id}",
        "when": {"any_phrases": [phrase]},
        "then": {"action": "escalate", "reason": "refund"},
        **extra,
    }


def _yaml(*rules: dict[str, object]) -> str:
    return yaml.safe_dump({"rules": list(rules)}, sort_keys=False)


def test_version_is_a_content_hash() -> None:
    one = build_ruleset([("a.yaml", _yaml(_rule("aa")))])
    same = build_ruleset([("a.yaml", _yaml(_rule("aa")))])
    edited = build_ruleset([("a.yaml", _yaml(_rule("aa", "refunds")))])
    renamed = build_ruleset([("b.yaml", _yaml(_rule("aa")))])
    assert one.version == same.version
    assert len({one.version, edited.version, renamed.version}) == 3
    assert len(one.version) == 12


def test_a_comment_changes_the_version() -> None:
    text = _yaml(_rule("aa"))
    plain = build_ruleset([("a.yaml", text)])
    commented = build_ruleset([("a.yaml", "# reviewed by legal\n" + text)])
    assert plain.version != commented.version


def test_disabled_rules_are_loaded_but_not_compiled() -> None:
    rules = build_ruleset([("a.yaml", _yaml(_rule("on-rule"), _rule("off-rule", enabled=False)))])
    assert [r.rule.id for r in rules.rules] == ["on-rule", "off-rule"]
    assert [r.id for r in rules.input.rules] == ["on-rule"]
    assert rules.output.rules == ()


def test_stages_are_split_and_keep_global_order() -> None:
    output: dict[str, object] = {
        "id": "out-rule",
        "stage": "output",
        "description": "d",
        "when": {"patterns": [r"\$\d"]},
        "then": {"action": "block", "reason": "pricing_disclosure"},
    }
    rules = build_ruleset([("a.yaml", _yaml(_rule("in-one"), output, _rule("in-two")))])
    assert [(r.id, r.order) for r in rules.input.rules] == [("in-one", 0), ("in-two", 2)]
    assert [(r.id, r.order) for r in rules.output.rules] == [("out-rule", 1)]
    assert rules.stage("output") is rules.output
    with pytest.raises(ValueError, match="unknown stage"):
        rules.stage("middle")


def test_load_rules_reads_yaml_files_in_name_order(tmp_path: Path) -> None:
    (tmp_path / "b.yml").write_text(_yaml(_rule("from-b")), encoding="utf-8")
    (tmp_path / "a.yaml").write_text(_yaml(_rule("from-a")), encoding="utf-8")
    (tmp_path / "notes.txt").write_text("not rules", encoding="utf-8")
    (tmp_path / "sub.yaml").mkdir()
    rules = load_rules(tmp_path)
    assert [(r.rule.id, r.file) for r in rules.rules] == [("from-a", "a.yaml"), ("from-b", "b.yml")]


def test_load_rules_errors(tmp_path: Path) -> None:
    with pytest.raises(RuleError, match="does not exist"):
        load_rules(tmp_path / "missing")
    with pytest.raises(RuleError, match="no rule files"):
        load_rules(tmp_path)
    (tmp_path / "bad.yaml").write_bytes(b"rules: \xff\xfe\n")
    with pytest.raises(RuleError) as info:
        load_rules(tmp_path)
    assert info.value.file == "bad.yaml"
