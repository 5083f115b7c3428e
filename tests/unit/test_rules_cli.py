"""`fte rules check` and `fte rules test` (SPEC 5), and the cases-file parser behind them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from fte_core.models import Channel
from fte_core.policy.cases import CasesFileError, parse_cases
from service.cli import main

RULES = [
    {
        "id": "refund-words",
        "stage": "input",
        "description": "Money back goes to billing.",
        "when": {"any_phrases": ["refund*", "money back"]},
        "then": {"action": "escalate", "reason": "refund", "urgency": "high"},
        "examples": {
            "match": ["I want a refund", {"text": "pls money back", "channel": "whatsapp"}],
            "no_match": ["How do I reset my password?"],
        },
    },
    {
        "id": "amount-in-draft",
        "stage": "output",
        "description": "Drafts never quote amounts.",
        "when": {"patterns": [r"[$€£]\s?\d"]},
        "then": {"action": "block", "reason": "pricing_disclosure"},
        "examples": {"match": ["That is $49."], "no_match": ["Open Settings."]},
    },
]


def _case(case_id: str, text: str, action: str, stage: str = "input", **extra: object) -> str:
    expect: dict[str, object] = {"action": action, **extra}
    return json.dumps(
        {"id": case_id, "stage": stage, "channel": "email", "text": text, "expect": expect}
    )


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "rules"
    directory.mkdir()
    (directory / "main.yaml").write_text(yaml.safe_dump({"rules": RULES}), encoding="utf-8")
    return directory


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_check_ok(rules_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "rules", "check", "--rules", str(rules_dir))
    assert code == 0
    assert out.startswith("ok: 2 rules in 1 files (1 input, 1 output active), version ")


def test_check_broken_file(rules_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = RULES[0] | {"id": "typo-rule", "when": {"any_phrase": ["x"]}}
    (rules_dir / "zz-broken.yaml").write_text(
        yaml.safe_dump({"rules": [broken]}, sort_keys=False), encoding="utf-8"
    )
    code, out, err = _run(capsys, "rules", "check", "--rules", str(rules_dir))
    assert code == 2
    assert out == ""
    assert err.startswith("error: zz-broken.yaml:")
    assert ": rule 'typo-rule': " in err
    assert "any_phrase" in err
    line = int(err.split(":")[2])
    assert 1 < line < 12


def test_check_missing_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "rules", "check", "--rules", str(tmp_path / "none"))
    assert code == 2
    assert "does not exist" in err


def test_inline_examples_pass(rules_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "rules", "test", "--rules", str(rules_dir))
    assert code == 0
    assert out.splitlines() == ["5 passed, 0 failed"]


def test_inline_example_failing(rules_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = [RULES[0] | {"examples": {"match": ["a refund"], "no_match": ["refunds again"]}}]
    (rules_dir / "main.yaml").write_text(yaml.safe_dump({"rules": rules}), encoding="utf-8")
    code, out, _ = _run(capsys, "rules", "test", "--rules", str(rules_dir))
    assert code == 1
    lines = out.splitlines()
    assert lines[-1] == "1 passed, 1 failed"
    assert lines[0].startswith("FAIL refund-words/no_match/1: ")
    assert "refund-words does not fire" in lines[0]


def test_cases_file(rules_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cases = tmp_path / "cases.jsonl"
    cases.write_text(
        "\n".join(
            [
                _case("c1", "pls refund me", "escalate", reason="refund"),
                "",
                _case("c2", "How do boards work?", "allow"),
                _case("c3", "How do boards work?", "escalate"),  # fails
                _case("c4", "I have refunded $49.", "block", "output", reason="pricing_disclosure"),
                _case("c5", "pls refund me", "escalate", reason="legal"),  # fails: wrong reason
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    code, out, _ = _run(capsys, "rules", "test", str(cases), "--rules", str(rules_dir))
    assert code == 1
    lines = out.splitlines()
    assert lines[-1] == "3 passed, 2 failed"
    assert [line.split(":")[0] for line in lines[:-1]] == ["FAIL c3", "FAIL c5"]
    assert "expected escalate/legal" in lines[1]

    code, out, _ = _run(capsys, "rules", "test", str(cases), "--rules", str(rules_dir), "--json")
    assert code == 1
    report = json.loads(out)
    assert set(report) == {"passed", "failed", "results"}
    assert (report["passed"], report["failed"]) == (3, 2)
    assert [r["id"] for r in report["results"]] == ["c1", "c2", "c3", "c4", "c5"]
    assert all(set(r) == {"id", "pass", "action", "reasons", "rule_ids"} for r in report["results"])
    assert report["results"][0] == {
        "id": "c1",
        "pass": True,
        "action": "escalate",
        "reasons": ["refund"],
        "rule_ids": ["refund-words"],
    }
    assert report["results"][2]["pass"] is False


def test_all_cases_passing_exits_0(
    rules_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cases = tmp_path / "cases.jsonl"
    cases.write_text(_case("c1", "money back", "escalate") + "\n", encoding="utf-8")
    code, out, _ = _run(capsys, "rules", "test", str(cases), "--rules", str(rules_dir), "--json")
    assert code == 0
    assert json.loads(out)["failed"] == 0


@pytest.mark.parametrize(
    ("second_line", "message"),
    [
        ("{not json", "cases.jsonl:2: "),
        (_case("c1", "again", "allow"), "duplicate case id 'c1'"),
        (_case("c2", "x", "maybe"), "cases.jsonl:2: "),
        (
            json.dumps(
                {
                    "id": "c2",
                    "stage": "input",
                    "channel": "fax",
                    "text": "x",
                    "expect": {"action": "allow"},
                }
            ),
            "cases.jsonl:2: ",
        ),
    ],
)
def test_invalid_cases_file_exits_2(
    rules_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    second_line: str,
    message: str,
) -> None:
    cases = tmp_path / "cases.jsonl"
    cases.write_text(
        _case("c1", "refund", "escalate") + "\n" + second_line + "\n", encoding="utf-8"
    )
    code, out, err = _run(capsys, "rules", "test", str(cases), "--rules", str(rules_dir))
    assert code == 2
    assert out == ""
    assert message in err
    assert str(cases) in err


def test_missing_cases_file_exits_2(rules_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "rules", "test", "nope.jsonl", "--rules", str(rules_dir))
    assert code == 2
    assert "cannot read" in err


def test_broken_rules_exit_2_on_test(rules_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (rules_dir / "main.yaml").write_text("rules: [", encoding="utf-8")
    code, _, err = _run(capsys, "rules", "test", "--rules", str(rules_dir))
    assert code == 2
    assert err.startswith("error: main.yaml:1: not valid YAML")


def test_parse_cases() -> None:
    text = _case("a1", "hi", "allow") + "\n\n" + _case("a2", "x", "block", "output") + "\n"
    cases = parse_cases(text)
    assert [(c.id, c.stage, c.channel, c.expect.action) for c in cases] == [
        ("a1", "input", Channel.EMAIL, "allow"),
        ("a2", "output", Channel.EMAIL, "block"),
    ]


@pytest.mark.parametrize(
    ("lines", "line"),
    [
        (["{}"], 1),
        ([_case("a1", "hi", "allow"), "", "[1, 2]"], 3),
        ([_case("a1", "hi", "allow"), _case("a1", "hi", "allow")], 2),
        (
            [
                json.dumps(
                    {
                        "id": "a",
                        "stage": "input",
                        "channel": "email",
                        "text": "x",
                        "expect": {"action": "allow"},
                        "extra": 1,
                    }
                )
            ],
            1,
        ),
    ],
)
def test_parse_cases_errors_carry_the_line(lines: list[str], line: int) -> None:
    with pytest.raises(CasesFileError) as info:
        parse_cases("\n".join(lines))
    assert info.value.line == line
    assert str(info.value).startswith(f"line {line}: ")


def test_strict_fails_rules_with_too_few_examples(
    rules_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _run(capsys, "rules", "test", "--rules", str(rules_dir), "--strict")
    assert code == 1
    assert "FAIL refund-words/match: expected at least 6 match examples, found 2" in out


def test_shipped_rules_pass_strict(capsys: pytest.CaptureFixture[str]) -> None:
    shipped = Path(__file__).resolve().parents[2] / "rules"
    code, out, _ = _run(capsys, "rules", "test", "--rules", str(shipped), "--strict")
    assert code == 0, out
    assert out.rstrip().endswith(" 0 failed")


def test_errors_are_json_with_json(rules_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (rules_dir / "zz.yaml").write_text("rules:\n  - id: x\n    stage: input\n", encoding="utf-8")
    for command in ("check", "test"):
        code, out, err = _run(capsys, "rules", command, "--rules", str(rules_dir), "--json")
        assert code == 2
        assert err == ""
        error = json.loads(out)["error"]
        assert error["file"] == "zz.yaml"
        assert error["line"] >= 1
        assert "Expected `str` matching regex" in error["message"]  # id "x" is too short


def test_check_json_reports_the_rule_set(
    rules_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _run(capsys, "rules", "check", "--rules", str(rules_dir), "--json")
    report = json.loads(out)
    assert code == 0
    assert report["ok"] is True
    assert report["rules"] == 2


def test_calibrate_writes_and_explains(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rule = {
        "id": "person",
        "stage": "input",
        "description": "wants a person",
        "when": {"similar_to": {"exemplars": ["a real person should answer me"]}},
        "then": {"action": "escalate", "reason": "human_request"},
        "examples": {"match": ["i want a person to answer"], "no_match": ["export a board"]},
    }
    directory = tmp_path / "rules"
    directory.mkdir()
    (directory / "p.yaml").write_text(
        yaml.safe_dump({"rules": [rule]}, default_flow_style=False), encoding="utf-8"
    )
    code, _, err = _run(capsys, "rules", "check", "--rules", str(directory))
    assert code == 2
    assert "fte rules calibrate" in err
    context = tmp_path / "context"
    context.mkdir()
    code, out, _ = _run(
        capsys, "rules", "calibrate", "--rules", str(directory), "--context", str(context)
    )
    assert code == 0
    assert "person: threshold " in out
    assert "files written: p.yaml" in out
    code, _, _ = _run(capsys, "rules", "check", "--rules", str(directory))
    assert code == 0
