"""`fte rules check` and `fte rules test` (SPEC 5)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import msgspec

from fte_core.errors import RuleError
from fte_core.policy.cases import CasesFileError, TestReport, parse_cases, run_cases, run_examples
from fte_core.policy.engine import PolicyEngine
from fte_core.policy.loader import load_rules

EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    rules = sub.add_parser("rules", help="check and test the rule files")
    rsub = rules.add_subparsers(dest="rules_command", required=True)
    check = rsub.add_parser("check", help="load and validate the rule files")
    check.add_argument("--rules", default="rules", help="rules directory (default: rules)")
    check.set_defaults(handler=check_command)
    test = rsub.add_parser("test", help="run a cases file, or the inline examples")
    test.add_argument("cases", nargs="?", help="JSONL cases file (default: inline examples)")
    test.add_argument("--rules", default="rules", help="rules directory (default: rules)")
    test.add_argument("--json", action="store_true", help="print a JSON report")
    test.set_defaults(handler=test_command)


def check_command(args: argparse.Namespace) -> int:
    try:
        ruleset = load_rules(args.rules)
        PolicyEngine(ruleset).close()  # the engine's own limits are part of "valid"
    except RuleError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    files = sorted({r.file for r in ruleset.rules})
    print(
        f"ok: {len(ruleset.rules)} rules in {len(files)} files "
        f"({len(ruleset.input.rules)} input, {len(ruleset.output.rules)} output active), "
        f"version {ruleset.version}"
    )
    return EXIT_OK


def test_command(args: argparse.Namespace) -> int:
    try:
        engine = PolicyEngine(load_rules(args.rules))
    except RuleError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    try:
        if args.cases:
            text = Path(args.cases).read_text(encoding="utf-8")
            report = run_cases(engine, parse_cases(text))
        else:
            report = run_examples(engine)
    except CasesFileError as exc:
        print(f"error: {args.cases}: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except (OSError, UnicodeDecodeError) as exc:
        print(f"error: cannot read {args.cases}: {exc}", file=sys.stderr)
        return EXIT_INVALID
    finally:
        engine.close()
    _print_report(report, as_json=args.json)
    return EXIT_OK if report.failed == 0 else EXIT_FAILED


class _JsonResult(msgspec.Struct):
    id: str
    passed: bool = msgspec.field(name="pass")
    action: str = ""
    reasons: tuple[str, ...] = ()
    rule_ids: tuple[str, ...] = ()


class _JsonReport(msgspec.Struct):
    passed: int
    failed: int
    results: list[_JsonResult]


def _print_report(report: TestReport, *, as_json: bool) -> None:
    if as_json:
        out = _JsonReport(
            passed=report.passed,
            failed=report.failed,
            results=[
                _JsonResult(r.id, r.passed, r.action, r.reasons, r.rule_ids) for r in report.results
            ],
        )
        print(msgspec.json.encode(out).decode())
        return
    for r in report.results:
        if not r.passed:
            reasons = ",".join(r.reasons) or "-"
            rules = ",".join(r.rule_ids) or "-"
            print(f"FAIL {r.id}: expected {r.expected}; got {r.action} [{reasons}] rules [{rules}]")
    print(f"{report.passed} passed, {report.failed} failed")
