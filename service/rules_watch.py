"""Rule files reloaded while serving: compliance staff edit `rules/`, the service picks the
change up within seconds, all or nothing; a set that fails to load is logged with its
file:line error and the old one keeps serving."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from fte_core.errors import RuleError
from fte_core.policy.engine import PolicyEngine

log = logging.getLogger(__name__)


def fingerprint(directory: Path) -> tuple[tuple[str, int, int], ...]:
    """Names, sizes and modification times of the rule files: cheap to poll."""
    found = []
    for path in sorted(directory.glob("*.y*ml")):
        try:
            stat = path.stat()
        except OSError:
            continue
        found.append((path.name, stat.st_size, stat.st_mtime_ns))
    return tuple(found)


def reload_if_changed(policy: PolicyEngine, directory: Path, seen: object) -> object:
    """One poll: reload when the files changed; returns the fingerprint now seen."""
    current = fingerprint(directory)
    if current == seen:
        return seen
    try:
        policy.reload_directory(str(directory))
    except RuleError as exc:
        log.error(
            "rules in %s not loaded (%s); still serving version %s", directory, exc, policy.version
        )
    return current


async def watch_rules(
    policy: PolicyEngine, directory: Path, stop: asyncio.Event, interval: float = 2.0
) -> None:
    seen: object = fingerprint(directory)
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), timeout=interval)
        except TimeoutError:
            seen = reload_if_changed(policy, directory, seen)
