"""`fte rules shadow` on traffic the agent handled over real PostgreSQL: a proposed rule
that newly escalates one message, one that stops escalating another, and identical sets
reporting zero changes; nothing but the report is written."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import psycopg
import pytest

from fte_core.models import Channel, InboundMessage, Outcome, Verification
from fte_core.policy.engine import PolicyEngine
from fte_core.policy.loader import load_rules
from fte_core.shadow import ShadowReport
from service.bootstrap import bootstrap
from service.cli_shadow import run_shadow
from service.settings import Settings
from service.shadow_report import render_text

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.postgres

MESSAGES = {
    "password": "How do I reset my password?",
    "refund": "I want a refund for last month, please.",
    "human": "Can I talk to a real person please?",
    "export": "How do I export my tasks to a CSV file?",
}
# what a compliance officer might propose: bulk exports of data go to the security team
EXPORT_RULE = """rules:
  - id: bulk-export
    stage: input
    description: Exports of a workspace's data are a data-protection matter.
    when:
      any_phrases: [export*]
    then: {action: escalate, reason: account_security, urgency: normal}
"""
TABLES = (
    "customers",
    "customer_identifiers",
    "conversations",
    "tickets",
    "messages",
    "outbox",
    "dead_letters",
    "processed_messages",
    "agent_metrics",
)


def _settings(pg_url: str, data_dir: Path) -> Settings:
    return Settings(
        database_url=pg_url,
        data_dir=str(data_dir),
        rules_dir=str(ROOT / "rules"),
        context_dir=str(ROOT / "context"),
        embedder="hashing",
        token_secret="s" * 40,
    )


@pytest.fixture
async def seeded(pg_url: str, tmp_path: Path) -> tuple[Settings, dict[str, Outcome]]:
    """Four customers' emails, each decided by the agent with the shipped rules."""
    settings = _settings(pg_url, tmp_path)
    runtime = await bootstrap(settings)
    try:
        outcomes = {
            key: await runtime.agent.handle(
                InboundMessage(
                    channel=Channel.EMAIL,
                    provider_message_id=f"seed-{key}",
                    text=text,
                    subject="A question",
                    received_at=datetime.now(UTC),
                    sender_email=f"{key}@example.com",
                    verified_by=Verification.EMAIL_AUTH,
                )
            )
            for key, text in MESSAGES.items()
        }
    finally:
        await runtime.aclose()
    assert outcomes["refund"].record.action == "escalate"
    assert outcomes["human"].record.escalation_reason == "human_request"
    assert outcomes["export"].record.action == "answer"
    return settings, outcomes


def _snapshot(pg_url: str) -> dict[str, str]:
    """Every row of every table the pipeline writes, hashed."""
    with psycopg.connect(pg_url) as conn:
        return {
            table: str(
                conn.execute(
                    f"SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, ',' "
                    f"ORDER BY t::text)), '') FROM {table} t"
                ).fetchone()
            )
            for table in TABLES
        }


async def _shadow(settings: Settings, proposed: Path) -> ShadowReport:
    engine = PolicyEngine(load_rules(proposed))
    try:
        report, stored = await run_shadow(settings, engine, str(proposed), timedelta(days=7))
    finally:
        engine.close()
    assert stored.kind == "shadow"
    assert msgspec.json.decode(stored.body, type=ShadowReport) == report
    assert "Shadow evaluation" in stored.html
    return report


def _proposed(tmp_path: Path) -> Path:
    target = tmp_path / "proposed"
    shutil.copytree(ROOT / "rules", target)
    return target


def _disable(directory: Path, rule_ids: tuple[str, ...]) -> None:
    for path in directory.glob("*.yaml"):
        text = path.read_text(encoding="utf-8")
        for rule_id in rule_ids:
            text = re.sub(rf"(- id: {re.escape(rule_id)}\n)(\s+)", r"\1\2enabled: false\n\2", text)
        path.write_text(text, encoding="utf-8")


async def test_identical_rules_report_zero_changes_and_write_nothing(
    seeded: tuple[Settings, dict[str, Outcome]], pg_url: str
) -> None:
    settings, _ = seeded
    before = _snapshot(pg_url)
    report = await _shadow(settings, ROOT / "rules")
    assert _snapshot(pg_url) == before
    assert report.zero_changes
    assert report.identical_sets
    assert report.changes == ()
    assert report.input.replayed == 4
    assert report.input.changed == 0
    assert report.input.active_stopped == report.input.proposed_stopped == 2
    assert report.output.replayed >= 1  # the answered drafts the output rules judged
    assert report.active.version == report.proposed.version
    assert report.recorded_versions == {report.active.version: 4 + report.output.replayed}
    assert all(t.change == 0 for t in report.teams)
    assert "NO CHANGES: the proposed rules decide all 4 customer messages" in render_text(report)


async def test_a_new_rule_newly_escalates_with_its_words(
    seeded: tuple[Settings, dict[str, Outcome]], pg_url: str, tmp_path: Path
) -> None:
    settings, outcomes = seeded
    proposed = _proposed(tmp_path)
    (proposed / "export.yaml").write_text(EXPORT_RULE, encoding="utf-8")
    before = _snapshot(pg_url)
    report = await _shadow(settings, proposed)
    assert _snapshot(pg_url) == before
    assert not report.zero_changes
    assert report.rule_diff.added == ("bulk-export",)
    (group,) = report.changes
    assert (group.stage, group.kind, group.rule_ids, group.reason, group.count) == (
        "input",
        "newly_escalated",
        ("bulk-export",),
        "account_security",
        1,
    )
    (example,) = group.examples
    assert example.message_id == outcomes["export"].inbound_id
    assert example.ticket_number == outcomes["export"].ticket.number
    assert example.active.action == "allow"
    assert example.proposed.action == "escalate"
    assert example.evidence == ('[proposed] bulk-export: "export*"',)
    security = next(t for t in report.teams if t.team == "security")
    assert (security.active, security.proposed, security.change) == (0, 1, 1)
    text = render_text(report)
    assert "[input] newly escalated, reason account_security, rules bulk-export: 1" in text


async def test_a_disabled_rule_stops_escalating(
    seeded: tuple[Settings, dict[str, Outcome]], tmp_path: Path
) -> None:
    settings, outcomes = seeded
    fired = outcomes["human"].record.input_decision.rule_ids
    proposed = _proposed(tmp_path)
    _disable(proposed, fired)
    report = await _shadow(settings, proposed)
    assert report.rule_diff.changed == tuple(sorted(fired))
    (group,) = report.changes
    assert (group.kind, group.reason, group.count) == ("newly_allowed", "human_request", 1)
    assert group.rule_ids == tuple(sorted(fired))
    (example,) = group.examples
    assert example.message_id == outcomes["human"].inbound_id
    assert example.proposed.action == "allow"
    assert all(line.startswith("[active] human-") for line in example.evidence)
    assert any('"real person"' in line or "person" in line for line in example.evidence)
    support = next(t for t in report.teams if t.team == "support")
    assert support.change == -1


def test_the_command_prints_json_and_fails_on_change_when_asked(
    seeded: tuple[Settings, dict[str, Outcome]], pg_url: str, tmp_path: Path
) -> None:
    proposed = _proposed(tmp_path)
    (proposed / "export.yaml").write_text(EXPORT_RULE, encoding="utf-8")
    env: dict[str, Any] = {k: v for k, v in os.environ.items() if not k.startswith("FTE_")}
    env.update(FTE_DATABASE_URL=pg_url, FTE_DATA_DIR=str(tmp_path), FTE_EMBEDDER="hashing")

    def shadow(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "service.cli", "rules", "shadow", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    same = shadow("rules", "--json")
    assert same.returncode == 0, same.stderr
    assert json.loads(same.stdout)["zero_changes"] is True
    changed = shadow(str(proposed), "--since", "2d", "--fail-on-change")
    assert changed.returncode == 1, changed.stderr
    assert "1 CHANGES: 1 messages and 0 drafts." in changed.stdout
    assert "Saved as shadow report #2." in changed.stdout
    broken = proposed / "broken.yaml"
    broken.write_text("rules:\n  - id: broken-rule\n    stagee: input\n", encoding="utf-8")
    invalid = shadow(str(proposed))
    assert invalid.returncode == 2
    assert "broken.yaml:3: rule 'broken-rule'" in invalid.stderr  # the unknown key's line
