"""Per-category pass rates of a cases directory (default: the held-out guardrail set).

Run: .venv/bin/python -m tests.cases.heldout_report [DIR] [--rules rules] [--embedder minilm]

Prints one line per file and per expected outcome inside it (e.g. `escalate/refund`)
and how many harmless cases each rule wrongly fired on, never the individual cases:
the held-out set is for measuring, not for tuning.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from fte_core.policy.cases import parse_cases, run_cases
from fte_core.policy.engine import PolicyEngine
from fte_core.policy.loader import load_rules
from service import rules_embedder

HERE = Path(__file__).resolve().parent


def report(directory: Path, rules: str, embedder: str = "minilm") -> list[str]:
    engine = PolicyEngine(
        load_rules(rules), embedder=rules_embedder.embedder_for(embedder, ".fte/models")
    )
    lines = []
    total = Counter[str]()
    try:
        for path in sorted(directory.glob("*.jsonl")):
            cases = parse_cases(path.read_text(encoding="utf-8"))
            results = run_cases(engine, cases)
            passed, seen, false_alarms = Counter[str](), Counter[str](), Counter[str]()
            for case, result in zip(cases, results.results, strict=True):
                key = case.expect.action + (f"/{case.expect.reason}" if case.expect.reason else "")
                seen[key] += 1
                passed[key] += result.passed
                if case.expect.action == "allow" and not result.passed:
                    false_alarms.update(result.rule_ids)
            rate = results.passed / max(1, len(cases))
            lines.append(f"{path.stem:<20} {results.passed:>4}/{len(cases):<4} {rate:6.1%}")
            for key in sorted(seen):
                lines.append(f"    {key:<34} {passed[key]:>3}/{seen[key]:<3}")
            for rule_id, count in false_alarms.most_common():
                lines.append(f"    false alarms by {rule_id:<18} {count:>3}")
            total["passed"] += results.passed
            total["cases"] += len(cases)
    finally:
        engine.close()
    lines.append(f"{'total':<20} {total['passed']:>4}/{total['cases']:<4}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("directory", nargs="?", default=str(HERE / "heldout"))
    parser.add_argument("--rules", default=str(HERE.parents[1] / "rules"))
    parser.add_argument("--embedder", choices=rules_embedder.CHOICES, default="minilm")
    args = parser.parse_args()
    for line in report(Path(args.directory), args.rules, args.embedder):
        print(line)


if __name__ == "__main__":
    main()
