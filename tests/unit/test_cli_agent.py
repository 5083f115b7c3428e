"""`fte ask` and `fte eval` end to end on the in-memory adapters."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from service.cli import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("FTE_STORAGE", "memory")
    monkeypatch.delenv("FTE_LLM_MODEL", raising=False)


def test_ask_json_answers_with_the_reply_parts(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "ask",
            "--json",
            "--channel",
            "whatsapp",
            "--from",
            "+14155550123",
            "how do i reset my password",
        ]
    )
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert set(out) == {
        "customer_id",
        "conversation_id",
        "ticket_id",
        "action",
        "reasons",
        "rule_ids",
        "reply",
    }
    assert out["action"] == "answer"
    assert out["ticket_id"].startswith("TKT-")
    assert all(len(part) <= 1600 for part in out["reply"])


def test_ask_escalates_a_legal_threat(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "ask",
            "--json",
            "--channel",
            "email",
            "--from",
            "a@example.com",
            "--subject",
            "Final notice",
            "My lawyer will sue Tasklane next week.",
        ]
    )
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert out["action"] == "escalate"
    assert "legal" in out["reasons"]
    assert out["rule_ids"]


def test_ask_rejects_an_empty_message(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ask", "   "]) == 2
    assert "text" in capsys.readouterr().err


def test_ask_rejects_a_bad_address(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["ask", "--channel", "email", "--from", "not-an-email", "hello"])
    assert code == 2
    assert "email" in capsys.readouterr().err


def test_eval_meets_the_escalation_targets(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["eval", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0
    recall = {r["reason"]: r["recall"] for r in report["reasons"]}
    for reason in ("pricing", "refund", "legal", "human_request"):
        assert recall[reason] == 1.0, reason
    assert report["false_escalation_rate"] <= 0.05
