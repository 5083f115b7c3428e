"""Secrets the service makes for itself when none is configured (a fresh `make run`):
random, written once into the data directory with mode 0600, never logged."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from fte_core.errors import ConfigError


def load_or_create(path: Path, nbytes: int = 32) -> str:
    """The secret in `path`, made (URL-safe, `nbytes` of randomness) if the file is new."""
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    value = secrets.token_urlsafe(nbytes)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first: use theirs
        return _read(path)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(value)
    return value


def _read(path: Path) -> str:
    try:
        value = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    if not value:
        raise ConfigError(f"{path} is empty; delete it to have a new secret made")
    return value
