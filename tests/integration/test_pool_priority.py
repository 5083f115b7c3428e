"""A niced worker's database sessions are niced too when the server is on this machine
(the embedded default): otherwise its queries take the CPU the API's intake needs."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[2]

_CHILD = textwrap.dedent(
    """
    import asyncio, os, sys
    from adapters.storage.postgres.pool import open_pool

    async def niceness_of_sessions(local):
        pool = await open_pool(sys.argv[1], min_size=2, max_size=2, local=local)
        try:
            async with pool.connection() as a, pool.connection() as b:
                pids = [(await (await c.execute("SELECT pg_backend_pid()")).fetchone())[0]
                        for c in (a, b)]
                return [os.getpriority(os.PRIO_PROCESS, pid) for pid in pids]
        finally:
            await pool.close()

    os.nice(7)
    print(asyncio.run(niceness_of_sessions(False)), asyncio.run(niceness_of_sessions(True)))
    """
)


def test_a_niced_process_gets_niced_sessions_only_from_a_local_pool(pg_url: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, pg_url],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    remote, local = done.stdout.split("] [")
    assert "7" not in remote  # a server elsewhere is not ours to renice
    assert local.strip(" []\n").split(", ") == ["7", "7"]
