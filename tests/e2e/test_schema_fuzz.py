"""Schemathesis drives every operation of the OpenAPI schema with generated input against
a running `fte serve` (in-memory storage): no input makes the service answer 5xx."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import ADMIN
from tests.e2e.test_serve import free_port

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow
PORT = free_port()
URL = f"http://127.0.0.1:{PORT}"


@pytest.fixture(scope="module", autouse=True)
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FTE_")}
    env.update(
        FTE_STORAGE="memory",
        FTE_PORT=str(PORT),
        FTE_ADMIN_TOKEN=ADMIN,
        FTE_DATA_DIR=str(tmp_path_factory.mktemp("fuzz")),
        FTE_MAX_BODY_BYTES="65536",
        # WhatsApp configured with test values: its webhooks answer 4xx to unsigned input
        # (unconfigured they answer 503 by design, which this check would count as a 5xx)
        TWILIO_ACCOUNT_SID="AC" + "0" * 32,
        TWILIO_AUTH_TOKEN="t" * 32,
        TWILIO_WHATSAPP_FROM="+14155238886",
        # the Gmail webhook then checks its token (401) instead of answering 503 unconfigured
        GMAIL_PUSH_AUDIENCE="https://fuzz.example/api/v1/webhooks/gmail",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "serve"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{URL}/api/v1/ready", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    yield
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)


def test_no_input_gives_a_server_error(tmp_path: Path) -> None:
    """Schemathesis' own runner (its CLI), every operation, the server-error check only."""
    done = subprocess.run(
        [
            str(Path(sys.executable).with_name("schemathesis")),
            "run",
            f"{URL}/schema/openapi.json",
            "--checks",
            "not_a_server_error",
            "--header",
            f"Authorization: Bearer {ADMIN}",
            "--max-examples",
            "40",
            "--seed",
            "20261130",
            "--request-timeout",
            "10",
            "--suppress-health-check",
            "all",
        ],
        cwd=tmp_path,  # its cache directory stays out of the repository
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    ran = re.search(r"(\d+) passed", done.stdout)
    assert ran is not None, done.stdout[-2000:]
    assert int(ran.group(1)) >= 10  # every operation of the schema passed
