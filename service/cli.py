"""The `fte` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from service import cli_agent, cli_kb, cli_rules


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fte", description="Customer Success Digital FTE")
    sub = parser.add_subparsers(dest="command", required=True)
    cli_rules.register(sub)
    cli_agent.register(sub)
    cli_kb.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    code: int = args.handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
