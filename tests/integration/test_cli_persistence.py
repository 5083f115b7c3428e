"""`fte ask` in separate processes shares one embedded PostgreSQL in $FTE_DATA_DIR."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def ask(data_dir: Path, *args: str) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FTE_")}
    env["FTE_DATA_DIR"] = str(data_dir)
    done = subprocess.run(
        [sys.executable, "-m", "service.cli", "ask", "--json", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_web_form_then_email_is_one_customer_and_one_ticket(tmp_path: Path) -> None:
    first = ask(
        tmp_path,
        "--channel",
        "web_form",
        "--from",
        "Dana.Lee@Example.com",
        "--name",
        "Dana Lee",
        "--subject",
        "Password",
        "How do I reset my password?",
    )
    second = ask(
        tmp_path,
        "--channel",
        "email",
        "--from",
        "dana.lee@example.com",
        "--subject",
        "Also",
        "And how do I turn on two-factor authentication?",
    )
    assert second["customer_id"] == first["customer_id"]
    assert second["ticket_id"] == first["ticket_id"]
    assert second["conversation_id"] == first["conversation_id"]
    assert (tmp_path / "pg").is_dir()
