"""The lifecycle through `fte` in real processes over one embedded PostgreSQL: hand-over
then hold, whole-message rules, quoted ticket numbers, anonymous senders, eval's own
scope, secrets never printed, and no server left behind by a killed command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def fte(
    data_dir: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("FTE_")}
    base["FTE_DATA_DIR"] = str(data_dir)
    return subprocess.run(
        [sys.executable, "-m", "service.cli", *args],
        cwd=ROOT,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def ask(data_dir: Path, *args: str) -> dict[str, object]:
    done = fte(data_dir, "ask", "--json", *args)
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


def postgres_running(data_dir: Path) -> bool:
    found = subprocess.run(
        ["pgrep", "-f", f"postgres.*-D {data_dir / 'pg'}"], capture_output=True, check=False
    )
    return found.returncode == 0


def test_a_hand_over_then_hold_through_the_cli(tmp_path: Path) -> None:
    phone = ("--channel", "whatsapp", "--from", "+14155550177")
    handed = ask(tmp_path, *phone, "I want to talk to a human")
    assert handed["action"] == "escalate"
    held = ask(tmp_path, *phone, "how do I reset my password?")
    assert (held["action"], held["ticket_id"]) == ("hold", handed["ticket_id"])
    stranger = ask(
        tmp_path,
        "--channel",
        "whatsapp",
        "--from",
        "+447700900555",
        f"about ticket {handed['ticket_id']}: how do I export a board?",
    )
    assert stranger["ticket_id"] != handed["ticket_id"]
    assert str(handed["ticket_id"]) not in " ".join(str(p) for p in stranger["reply"])  # type: ignore[attr-defined]
    tail = ask(
        tmp_path,
        "--channel",
        "email",
        "--from",
        "lee@example.com",
        "How do I export a board?\n-- \nMy attorney will sue you",
    )
    assert tail["action"] == "escalate"
    assert "legal" in tail["reasons"]  # type: ignore[operator]


def test_senders_without_from_are_new_each_time_and_eval_has_its_own_scope(
    tmp_path: Path,
) -> None:
    evaluated = fte(tmp_path, "eval", "--json", timeout=300)
    assert evaluated.returncode == 0, evaluated.stderr
    first = ask(tmp_path, "how do I reset my password?")
    second = ask(tmp_path, "how do I reset my password?")
    assert first["customer_id"] != second["customer_id"]
    # the sample tickets live in eval's own schema: the real CRM starts at ticket 1
    assert {first["ticket_id"], second["ticket_id"]} == {"TKT-000001", "TKT-000002"}
    assert "anonymous sender" in fte(tmp_path, "ask", "--help").stdout


def test_a_misspelt_database_url_fails_fast_without_printing_the_password(
    tmp_path: Path,
) -> None:
    started = time.monotonic()
    done = fte(
        tmp_path,
        "ask",
        "hi",
        env={"FTE_DATABASE_URL": "postgress://admin:SECRET@127.0.0.1:5432/x"},
        timeout=30,
    )
    assert done.returncode != 0
    assert time.monotonic() - started < 15
    assert "SECRET" not in done.stdout + done.stderr
    assert "FTE_DATABASE_URL" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_an_unreachable_database_fails_within_the_connect_timeout(tmp_path: Path) -> None:
    started = time.monotonic()
    done = fte(
        tmp_path,
        "ask",
        "hi",
        env={
            "FTE_DATABASE_URL": "postgresql://admin:SECRET@127.0.0.1:9/x",
            "FTE_DATABASE_CONNECT_TIMEOUT": "2",
        },
        timeout=30,
    )
    assert done.returncode != 0
    assert time.monotonic() - started < 15
    assert "SECRET" not in done.stdout + done.stderr
    assert "cannot connect to PostgreSQL within 2 s" in done.stderr


@pytest.mark.parametrize("after", ["1", "3"])
def test_a_terminated_command_leaves_no_server_behind(tmp_path: Path, after: str) -> None:
    """`timeout -s TERM` signals the whole process group (initdb and pg_ctl too)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("FTE_")}
    done = subprocess.run(
        ["timeout", "-s", "TERM", after, sys.executable, "-m", "service.cli", "eval"],
        cwd=ROOT,
        env={**base, "FTE_DATA_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "Traceback" not in done.stderr
    assert ask(tmp_path, "hello")["action"] in ("answer", "escalate")
    deadline = time.monotonic() + 20
    while postgres_running(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not postgres_running(tmp_path)


def test_a_killed_commands_handle_is_dropped(tmp_path: Path) -> None:
    ask(tmp_path, "hello")  # initialises the cluster
    handles = tmp_path / "pg" / ".handle_pids.json"
    handles.write_text(json.dumps([2_000_000_000]), encoding="utf-8")  # a pid that is gone
    ask(tmp_path, "hello again")
    assert not postgres_running(tmp_path)
    assert json.loads(handles.read_text(encoding="utf-8")) == []
