"""A rule change is picked up while serving; a broken one is refused, the old set stays."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from fte_core.models import Channel
from fte_core.policy import PolicyEngine, load_rules
from service.rules_watch import fingerprint, reload_if_changed

ROOT = Path(__file__).resolve().parents[2]


def test_a_change_is_loaded_and_a_broken_file_keeps_the_old_set(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules)
    policy = PolicyEngine(load_rules(rules))
    try:
        before = policy.version
        seen = fingerprint(rules)
        assert reload_if_changed(policy, rules, seen) == seen  # nothing changed
        legal = rules / "legal.yaml"
        original = legal.read_text(encoding="utf-8")
        legal.write_text(original + "\n  - id: oops\n    stage: sideways\n", encoding="utf-8")
        with caplog.at_level(logging.ERROR):
            seen = reload_if_changed(policy, rules, seen)
        assert policy.version == before
        assert "legal.yaml:" in caplog.text
        assert "still serving version " + before in caplog.text
        text = "we will sue you"
        assert policy.evaluate("input", text, Channel.EMAIL).action == "escalate"
        legal.unlink()  # a valid change: the legal rules are gone
        reload_if_changed(policy, rules, seen)
        assert policy.version != before
        assert "legal" not in policy.evaluate("input", text, Channel.EMAIL).reasons
    finally:
        policy.close()
