"""`fte rules check` and `fte rules test` (SPEC 5)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import msgspec

from fte_core.errors import RuleError
from fte_core.policy.calibrate import benign_corpus, calibrate, write_back
from fte_core.policy.cases import (
    CasesFileError,
    Overlap,
    TestReport,
    cross_check,
    parse_cases,
    run_cases,
    run_examples,
    with_example_counts,
)
from fte_core.policy.engine import PolicyEngine
from fte_core.policy.loader import RuleSet, load_rules
from fte_core.ports import Embedder
from service import cli_shadow, rules_embedder

EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    rules = sub.add_parser("rules", help="check and test the rule files")
    rsub = rules.add_subparsers(dest="rules_command", required=True)
    check = rsub.add_parser("check", help="load and validate the rule files")
    check.add_argument("--rules", default="rules", help="rules directory (default: rules)")
    check.add_argument("--json", action="store_true", help="print JSON (errors too)")
    rules_embedder.add_arguments(check)
    check.set_defaults(handler=check_command)
    test = rsub.add_parser("test", help="run a cases file, or the inline examples")
    test.add_argument("cases", nargs="?", help="JSONL cases file (default: inline examples)")
    test.add_argument("--rules", default="rules", help="rules directory (default: rules)")
    test.add_argument("--json", action="store_true", help="print a JSON report (errors too)")
    rules_embedder.add_arguments(test)
    test.add_argument(
        "--strict",
        action="store_true",
        help="also fail a rule with fewer than MIN_EXAMPLES match or no_match examples, "
        "and a no_match example another rule catches",
    )
    test.set_defaults(handler=test_command)
    cal = rsub.add_parser(
        "calibrate", help="measure each similar_to threshold and write it to the rule file"
    )
    cal.add_argument("--rules", default="rules", help="rules directory (default: rules)")
    cal.add_argument("--context", default="context", help="benign corpus (default: context)")
    cal.add_argument("--dry-run", action="store_true", help="report without writing")
    cal.add_argument("--json", action="store_true", help="print JSON (errors too)")
    rules_embedder.add_arguments(cal, several=True)
    cal.set_defaults(handler=calibrate_command)
    cli_shadow.register(rsub)


MIN_EXAMPLES = 6  # per list, as rules/README.md asks of every rule


class _JsonError(msgspec.Struct, omit_defaults=True):
    message: str
    file: str | None = None
    line: int | None = None
    rule_id: str | None = None


class _JsonErrorReport(msgspec.Struct):
    error: _JsonError


class _JsonCheck(msgspec.Struct):
    ok: bool
    rules: int
    files: int
    input_active: int
    output_active: int
    version: str


def _fail(
    args: argparse.Namespace,
    message: str,
    exc: RuleError | None = None,
    *,
    file: str | None = None,
    line: int | None = None,
    detail: str | None = None,
) -> int:
    """Exit 2 with the problem: on stderr, or as JSON on stdout with --json."""
    if args.json:
        error = _JsonError(message=detail or message, file=file, line=line)
        if exc is not None:
            error = _JsonError(
                message=exc.detail, file=exc.file, line=exc.line, rule_id=exc.rule_id
            )
        print(msgspec.json.encode(_JsonErrorReport(error)).decode())
    else:
        print(f"error: {message}", file=sys.stderr)
    return EXIT_INVALID


def _engine(args: argparse.Namespace, ruleset: RuleSet) -> PolicyEngine:
    """The embedder is only opened when a rule reads meaning (`similar_to`)."""
    embedder: Embedder | None = None
    if ruleset.uses_similarity:
        embedder = rules_embedder.embedder_for(args.embedder, args.models)
    return PolicyEngine(ruleset, embedder=embedder)


def check_command(args: argparse.Namespace) -> int:
    try:
        ruleset = load_rules(args.rules)
        _engine(args, ruleset).close()  # the engine's own limits are part of "valid"
    except RuleError as exc:
        return _fail(args, str(exc), exc)
    files = sorted({r.file for r in ruleset.rules})
    if args.json:
        report = _JsonCheck(
            True,
            len(ruleset.rules),
            len(files),
            len(ruleset.input.rules),
            len(ruleset.output.rules),
            ruleset.version,
        )
        print(msgspec.json.encode(report).decode())
        return EXIT_OK
    print(
        f"ok: {len(ruleset.rules)} rules in {len(files)} files "
        f"({len(ruleset.input.rules)} input, {len(ruleset.output.rules)} output active), "
        f"version {ruleset.version}"
    )
    return EXIT_OK


def test_command(args: argparse.Namespace) -> int:
    try:
        engine = _engine(args, load_rules(args.rules))
    except RuleError as exc:
        return _fail(args, str(exc), exc)
    overlaps: tuple[Overlap, ...] | None = None
    try:
        if args.cases:
            text = Path(args.cases).read_text(encoding="utf-8")
            report = run_cases(engine, parse_cases(text))
        else:
            report = run_examples(engine)
            overlaps = cross_check(engine)
            if args.strict:
                report = with_example_counts(engine, report, MIN_EXAMPLES)
    except CasesFileError as exc:
        where = args.cases if exc.line is None else f"{args.cases}:{exc.line}"
        message = f"{where}: {exc.detail}"
        return _fail(args, message, file=args.cases, line=exc.line, detail=exc.detail)
    except (OSError, UnicodeDecodeError) as exc:
        return _fail(args, f"cannot read {args.cases}: {exc}", file=args.cases)
    finally:
        engine.close()
    _print_report(report, overlaps, strict=args.strict, as_json=args.json)
    failed = report.failed + (len(overlaps or ()) if args.strict else 0)
    return EXIT_OK if failed == 0 else EXIT_FAILED


class _JsonCalibration(msgspec.Struct):
    rule_id: str
    file: str
    threshold: float
    embedder: str
    closest_negative: float
    negatives: int
    caught: int
    examples: int
    meaning: str


def calibrate_command(args: argparse.Namespace) -> int:
    """Each embedder (by default every one the service may use) measures every
    `similar_to` rule; its thresholds go back into the files beside the others'."""
    try:
        benign = benign_corpus(Path(args.context))
        results, changed = [], set[str]()
        for embedder in rules_embedder.embedders_for(args):
            measured = calibrate(load_rules(args.rules), embedder, benign)
            results.extend(measured)
            if not args.dry_run:
                changed.update(write_back(Path(args.rules), measured))
                PolicyEngine(load_rules(args.rules), embedder=embedder).close()  # it loads
    except RuleError as exc:
        return _fail(args, str(exc), exc)
    if args.json:
        rows = [
            _JsonCalibration(
                r.rule_id,
                r.file,
                r.threshold,
                r.embedder,
                r.closest_negative,
                r.negatives,
                r.caught,
                r.examples,
                r.explain(),
            )
            for r in results
        ]
        print(msgspec.json.encode(rows).decode())
        return EXIT_OK
    for r in results:
        print(r.explain())
    written = ", ".join(sorted(changed)) or "none"
    print(f"{len(results)} rules calibrated; files written: {written}")
    return EXIT_OK


class _JsonResult(msgspec.Struct):
    id: str
    passed: bool = msgspec.field(name="pass")
    action: str = ""
    reasons: tuple[str, ...] = ()
    rule_ids: tuple[str, ...] = ()


class _JsonReport(msgspec.Struct, omit_defaults=True):
    passed: int
    failed: int
    results: list[_JsonResult]
    # inline examples only: no_match examples another rule catches (failures if --strict)
    overlaps: tuple[Overlap, ...] | None = None


def _print_report(
    report: TestReport, overlaps: tuple[Overlap, ...] | None, *, strict: bool, as_json: bool
) -> None:
    failed = report.failed + (len(overlaps or ()) if strict else 0)
    if as_json:
        out = _JsonReport(
            passed=report.passed,
            failed=failed,
            results=[
                _JsonResult(r.id, r.passed, r.action, r.reasons, r.rule_ids) for r in report.results
            ],
            overlaps=overlaps,
        )
        print(msgspec.json.encode(out).decode())
        return
    for r in report.results:
        if not r.passed:
            reasons = ",".join(r.reasons) or "-"
            rules = ",".join(r.rule_ids) or "-"
            print(f"FAIL {r.id}: expected {r.expected}; got {r.action} [{reasons}] rules [{rules}]")
    label = "FAIL" if strict else "WARN"
    for o in overlaps or ():
        print(
            f"{label} {o.example}: caught by another rule [{','.join(o.caught_by)}] "
            f"[{','.join(o.reasons)}]: {o.text!r}"
        )
    warnings = "" if strict or not overlaps else f", {len(overlaps)} warnings"
    print(f"{report.passed} passed, {failed} failed{warnings}")
