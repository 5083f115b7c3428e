"""docs/discovery.md quotes the sample tickets' numbers as tests/discovery_stats computes
them: the table there must be the table here."""

from __future__ import annotations

from pathlib import Path

from tests.discovery_stats import all_stats, table

DOC = Path(__file__).resolve().parents[2] / "docs" / "discovery.md"


def test_the_documented_table_matches_the_data() -> None:
    text = DOC.read_text(encoding="utf-8")
    documented = text.split("<!-- discovery-table:start -->\n", 1)[1].split("\n<!--", 1)[0]
    assert documented.strip() == table(all_stats()).strip()


def test_at_least_ten_patterns_with_what_they_shaped() -> None:
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## Patterns", 1)[1].split("## Per channel", 1)[0]
    patterns = [line for line in section.splitlines() if line[:3].rstrip(". ").isdigit()]
    assert len(patterns) >= 10
    stats = all_stats()
    assert len(stats["email"]) >= 10  # ten or more measured patterns for each channel
