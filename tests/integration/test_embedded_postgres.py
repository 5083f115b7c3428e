"""EmbeddedPostgres reuses a cluster directory and a server another process started."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from adapters.storage.postgres.embedded import EmbeddedPostgres
from fte_core.errors import StorageError

pytestmark = pytest.mark.postgres

_HOLDER = """
import sys
from adapters.storage.postgres.embedded import EmbeddedPostgres
server = EmbeddedPostgres(sys.argv[1])
print(server.start(), flush=True)
sys.stdin.readline()
server.stop()
"""


def _share_server(data: Path, their_url: str) -> None:
    if not their_url:
        pytest.fail("the holder process could not start PostgreSQL")
    ours = EmbeddedPostgres(data)
    try:
        url = ours.start()
    except StorageError as exc:
        pytest.fail(str(exc))
    assert url == their_url
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    ours.stop()
    # The other process still uses it: our stop() must not have shut it down.
    with psycopg.connect(their_url) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_joins_a_server_started_by_another_process(tmp_path: Path) -> None:
    data = tmp_path / "pg"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    with subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(data)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    ) as holder:
        assert holder.stdin is not None
        assert holder.stdout is not None
        try:
            _share_server(data, holder.stdout.readline().strip())
        finally:
            holder.stdin.write("\n")
            holder.stdin.flush()
            holder.wait(timeout=30)
    assert holder.returncode == 0
    # The cluster directory is reused by the next start.
    with EmbeddedPostgres(data) as url, psycopg.connect(url) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
