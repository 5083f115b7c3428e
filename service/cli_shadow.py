"""`fte rules shadow NEW_RULES_DIR [--since 7d] [--json]`: what a rule change would have
done to the stored traffic of the period, before it goes live (fte_core.shadow).

The active rule set is the one the service loads (FTE_RULES_DIR); the traffic is the
service's own database. The report is printed and saved (ReportStore, kind "shadow"),
where the operators' inbox shows the latest one.
"""

from __future__ import annotations

import argparse
import re
import sys
from datetime import timedelta

import msgspec

from fte_core.clock import utc_now
from fte_core.errors import FteError, RuleError
from fte_core.policy.engine import PolicyEngine
from fte_core.policy.loader import load_rules
from fte_core.ports import StoredReport
from fte_core.shadow import ShadowReport, collect, compare
from service import runner
from service.api import team_of
from service.bootstrap import bootstrap
from service.settings import Settings, load_settings
from service.shadow_report import render_html, render_text, summary

EXIT_OK, EXIT_CHANGED, EXIT_INVALID = 0, 1, 2
_PERIOD = re.compile(r"^(?P<n>\d+(?:\.\d+)?)(?P<unit>[hdw])$")
_UNITS = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}


def period(text: str) -> timedelta:
    """`36h`, `7d`, `2w`."""
    match = _PERIOD.match(text.strip())
    if match is None or float(match["n"]) <= 0:
        raise argparse.ArgumentTypeError(f"not a period like 36h, 7d or 2w: {text!r}")
    return float(match["n"]) * _UNITS[match["unit"]]


def register(rsub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    shadow = rsub.add_parser(
        "shadow",
        help="replay stored traffic through the active and a proposed rule set",
        description="Replay the period's stored customer messages (and the drafts the "
        "output rules judged) through the active rules (FTE_RULES_DIR) and the proposed "
        "ones, side by side, writing nothing but the report. Prints every decision that "
        "would change, with its rules, words and examples, and the change in rule-driven "
        "hand-overs per team; the report is saved for the inbox.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    shadow.add_argument("proposed", metavar="NEW_RULES_DIR", help="the proposed rule files")
    shadow.add_argument("--since", type=period, default="7d", help="the period replayed")
    shadow.add_argument("--examples", type=int, default=3, help="examples per change")
    shadow.add_argument("--json", action="store_true", help="print the report as JSON")
    shadow.add_argument(
        "--fail-on-change", action="store_true", help="exit 1 when any decision changes"
    )
    shadow.set_defaults(handler=shadow_command)


def shadow_command(args: argparse.Namespace) -> int:
    settings = load_settings()
    try:
        proposed = PolicyEngine(load_rules(args.proposed))
    except RuleError as exc:
        print(f"error: proposed rules: {exc}", file=sys.stderr)
        return EXIT_INVALID
    try:
        report, stored = runner.run(
            run_shadow(settings, proposed, args.proposed, args.since, max(args.examples, 0))
        )
    except FteError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    finally:
        proposed.close()
    if args.json:
        print(msgspec.json.encode(report).decode())
    else:
        print(render_text(report))
        print(f"Saved as shadow report #{stored.id}.")
    return EXIT_CHANGED if args.fail_on_change and not report.zero_changes else EXIT_OK


async def run_shadow(
    settings: Settings,
    proposed: PolicyEngine,
    proposed_dir: str,
    since: timedelta,
    examples: int = 3,
) -> tuple[ShadowReport, StoredReport]:
    """Read the period's traffic, compare, save the report; nothing else is written."""
    runtime = await bootstrap(settings, ingest=False)
    try:
        until = utc_now()
        samples = await collect(runtime.store, until - since)
        report = compare(
            runtime.policy,
            proposed,
            samples,
            since=until - since,
            until=until,
            directories=(settings.rules_dir, proposed_dir),
            team_of=team_of,
            examples=examples,
        )
        title = f"Rules {report.active.version} -> {report.proposed.version}: {summary(report)}"
        stored = await runtime.reports.save_report(
            "shadow", title, msgspec.json.encode(report), render_html(report)
        )
        return report, stored
    finally:
        await runtime.aclose()
