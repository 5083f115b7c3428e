"""The `fte` command line."""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from importlib import metadata
from types import FrameType

from service import cli_agent, cli_gmail, cli_kb, cli_mcp, cli_reports, cli_rules, cli_serve
from service.logs import configure_logging
from service.runner import Terminated
from service.settings import ENVIRONMENT_HELP

_EPILOG = (
    "Run it as .venv/bin/fte, or activate the environment first (. .venv/bin/activate).\n\n"
    "Configuration comes from the environment only:\n" + ENVIRONMENT_HELP
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fte",
        description="Customer Success Digital FTE",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    cli_rules.register(sub)
    cli_agent.register(sub)
    cli_kb.register(sub)
    cli_serve.register(sub)
    cli_gmail.register(sub)
    cli_reports.register(sub)
    cli_mcp.register(sub)
    return parser


def _version() -> str:
    try:
        return metadata.version("fte")
    except metadata.PackageNotFoundError:
        return "unknown"


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise Terminated


def main(argv: Sequence[str] | None = None) -> int:
    configure_logging()
    parser = build_parser()
    args = parser.parse_args(argv)
    # outside a command's event loop (see service.runner), SIGTERM acts like Ctrl-C
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        code: int = args.handler(args)
    except KeyboardInterrupt as exc:
        print(f"fte {args.command}: stopped cleanly ({type(exc).__name__})", file=sys.stderr)
        return 143 if isinstance(exc, Terminated) else 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    return code


if __name__ == "__main__":
    sys.exit(main())
