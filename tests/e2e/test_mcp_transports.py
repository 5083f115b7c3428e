"""The MCP server through the SDK's own client: `fte mcp` as a stdio subprocess, and
streamable HTTP at /mcp of a running `fte api` (401 without the admin token)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

ROOT = Path(__file__).resolve().parents[2]
ADMIN = "m" * 40
SIX = {
    "search_knowledge_base",
    "create_ticket",
    "get_customer_history",
    "escalate_to_human",
    "send_response",
    "explain_decision",
}

pytestmark = pytest.mark.slow


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FTE_")}
    env.update(
        FTE_STORAGE="memory",
        FTE_DATA_DIR=str(data_dir),
        FTE_TOKEN_SECRET="t" * 40,
        FTE_ADMIN_TOKEN=ADMIN,
        **extra,
    )
    return env


async def test_stdio_server_lists_six_tools_and_answers(tmp_path: Path) -> None:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "service.cli", "mcp"],
        env=_env(tmp_path),
        cwd=str(ROOT),
    )
    async with Client(params, read_timeout_seconds=60) as client:
        listed = await client.list_tools()
        assert {t.name for t in listed.tools} == SIX
        schema = next(t for t in listed.tools if t.name == "search_knowledge_base").input_schema
        assert schema["properties"]["limit"] == {
            "type": "integer",
            "minimum": 1,
            "maximum": 20,
            "default": 5,
        }
        assert schema["required"] == ["query"]
        found = await client.call_tool("search_knowledge_base", {"query": "reset my password"})
        assert not found.is_error
        assert found.structured_content is not None
        sections = [p["section"] for p in found.structured_content["passages"]]
        assert "Resetting your password" in sections
        bad = await client.call_tool("search_knowledge_base", {"query": "x", "limit": 99})
        assert bad.is_error
        assert bad.content[0].text.startswith("limit: ")  # type: ignore[union-attr]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def api_url(tmp_path: Path) -> Iterator[str]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "api"],
        cwd=ROOT,
        env=_env(tmp_path, FTE_PORT=str(port)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.communicate()[1][-2000:]
            assert time.monotonic() < deadline, "fte api did not become ready"
            try:
                if httpx.get(f"{url}/api/v1/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


def test_http_needs_the_admin_token(api_url: str) -> None:
    hello = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    headers = {"Accept": "application/json, text/event-stream"}
    assert httpx.post(f"{api_url}/mcp", json=hello, headers=headers).status_code == 401
    wrong = {**headers, "Authorization": "Bearer " + "x" * 40}
    assert httpx.post(f"{api_url}/mcp", json=hello, headers=wrong).status_code == 401


async def test_http_client_creates_answers_and_reads_back(api_url: str) -> None:
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {ADMIN}"})
    async with http, Client(streamable_http_client(f"{api_url}/mcp", http_client=http)) as client:
        assert {t.name for t in (await client.list_tools()).tools} == SIX
        made = await client.call_tool(
            "create_ticket",
            {
                "channel": "web_form",
                "message": "How do I export my tasks to CSV?",
                "email": "lee@example.com",
                "name": "Lee",
                "request_id": "http-1",
            },
        )
        assert not made.is_error, made.content
        receipt = made.structured_content
        assert receipt is not None
        ticket = {
            "ticket_number": receipt["ticket_number"],
            "access_token": receipt["access_token"],
        }
        sent = await client.call_tool(
            "send_response", {**ticket, "text": "Open the project menu and choose Export, CSV."}
        )
        assert sent.structured_content is not None
        assert sent.structured_content["status"] == "queued"
        history = await client.call_tool("get_customer_history", ticket)
        assert history.structured_content is not None
        texts = [i["text"] for i in history.structured_content["items"]]
        assert texts[0] == "How do I export my tasks to CSV?"
        assert "Export, CSV" in texts[1]
