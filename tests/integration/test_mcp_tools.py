"""The six MCP tools through the SDK's client (in process), over the in-memory store and
PostgreSQL: the access token scopes every ticket tool to one customer, replies pass the
input and output rules first, and bad arguments come back naming the field."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp_types import CallToolResult, TextContent

from adapters.mcp.server import build_server
from fte_core.ports import CrmStore
from fte_core.testing.knowledge import InMemoryKnowledgeBase
from fte_core.toolkit import Toolkit
from service.bootstrap import Runtime, bootstrap
from service.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def runtime(store: CrmStore, tmp_path: Path) -> AsyncIterator[Runtime]:
    settings = Settings(
        storage="memory",
        data_dir=str(tmp_path),
        rules_dir=str(ROOT / "rules"),
        context_dir=str(ROOT / "context"),
        token_secret="k" * 40,
    )
    runtime = await bootstrap(settings, store=store, knowledge=InMemoryKnowledgeBase())
    try:
        yield runtime
    finally:
        await runtime.aclose()


def connect(runtime: Runtime) -> Client:
    """Opened inside each test: the SDK's task groups must enter and exit in one task."""
    return Client(build_server(Toolkit(runtime.agent, runtime.token_secret)))


def _text(result: CallToolResult) -> str:
    first = result.content[0]
    assert isinstance(first, TextContent)
    return first.text


async def _ok(client: Client, tool: str, args: dict[str, Any]) -> dict[str, Any]:
    result = await client.call_tool(tool, args)
    assert not result.is_error, _text(result)
    assert result.structured_content is not None
    return result.structured_content


async def _error(client: Client, tool: str, args: dict[str, Any]) -> str:
    result = await client.call_tool(tool, args)
    assert result.is_error, result.structured_content
    return _text(result)


async def _ticket(client: Client, who: str, text: str) -> dict[str, str]:
    receipt = await _ok(
        client,
        "create_ticket",
        {"channel": "web_form", "message": text, "email": f"{who}@example.com", "name": who},
    )
    return {"ticket_number": receipt["ticket_number"], "access_token": receipt["access_token"]}


async def test_history_is_one_customers_and_needs_the_token(runtime: Runtime) -> None:
    async with connect(runtime) as client:
        ana = await _ticket(client, "ana", "How do I reset my password? Ana here.")
        ben = await _ticket(client, "ben", "Ben: my tasks do not sync on Android.")
        history = await _ok(client, "get_customer_history", ana)
        texts = [item["text"] for item in history["items"]]
        assert texts == ["How do I reset my password? Ana here."]
        # Ana's token on Ben's ticket, a made-up token, an unknown ticket: the same refusal
        crossed = {"ticket_number": ben["ticket_number"], "access_token": ana["access_token"]}
        for args in (
            crossed,
            {**ana, "access_token": "guess"},
            {**ana, "ticket_number": "TKT-999999"},
        ):
            message = await _error(client, "get_customer_history", args)
            assert message == "NotFound: no ticket with that number and access token"


async def test_a_reply_passes_both_rule_stages_once(runtime: Runtime) -> None:
    async with connect(runtime) as client:
        ticket = await _ticket(client, "cai", "How do I reset my password?")
        blocked = await _ok(
            client, "send_response", {**ticket, "text": "I have refunded $49 to your card."}
        )
        assert blocked["status"] == "blocked"
        assert blocked["stage"] == "output"
        assert "unapproved_commitment" in blocked["reasons"]
        assert blocked["message_id"] is None
        number = ticket["ticket_number"]
        stored = await runtime.store.get_ticket(number)
        assert stored is not None
        messages = await runtime.store.conversation_messages(stored.conversation_id)
        assert len(messages) == 1  # the blocked draft was neither stored nor sent
        sent = await _ok(
            client,
            "send_response",
            {**ticket, "text": "Choose Forgot password on the sign-in page."},
        )
        assert sent["status"] == "queued"
        again = await _ok(client, "send_response", {**ticket, "text": "Another answer."})
        assert again["status"] == "already_answered"
        assert again["message_id"] == sent["message_id"]
        explained = await _ok(
            client, "explain_decision", {**ticket, "message_id": sent["message_id"]}
        )
        assert "answered by: mcp" in explained["summary"]
        assert explained["record"]["output_decision"]["action"] == "allow"
        after = await runtime.store.get_ticket(number)
        assert after is not None
        assert after.status == "pending"


async def test_a_message_the_input_rules_escalate_gets_no_reply(runtime: Runtime) -> None:
    async with connect(runtime) as client:
        ticket = await _ticket(client, "dee", "I want a refund for last month.")
        result = await _ok(
            client, "send_response", {**ticket, "text": "Sorry to hear that, happy to help."}
        )
        assert result["status"] == "blocked"
        assert result["stage"] == "input"
        assert result["reasons"][0] == "refund"


async def test_escalation_hands_the_ticket_to_a_person(runtime: Runtime) -> None:
    async with connect(runtime) as client:
        ticket = await _ticket(client, "eve", "The export button does nothing.")
        escalated = await _ok(client, "escalate_to_human", {**ticket, "reason": "human_request"})
        assert escalated["status"] == "escalated"
        assert escalated["owner"] == "human"
        assert escalated["escalation_reason"] == "human_request"
        refused = await _error(client, "send_response", {**ticket, "text": "Try again later."})
        assert refused.startswith("InvalidTransition: ")
        assert "a person owns it" in refused


async def test_create_ticket_is_idempotent_per_request_id(runtime: Runtime) -> None:
    async with connect(runtime) as client:
        args = {
            "channel": "email",
            "message": "Where can I change my plan?",
            "email": "fay@example.com",
            "request_id": "crm-42",
        }
        first = await _ok(client, "create_ticket", args)
        second = await _ok(client, "create_ticket", args)
        assert first["created"] is True
        assert second["created"] is False
        assert second["ticket_number"] == first["ticket_number"]
        assert second["message_id"] == first["message_id"]


async def test_bad_arguments_name_the_field(runtime: Runtime) -> None:
    async with connect(runtime) as client:
        cases = [
            ("search_knowledge_base", {"query": "sso", "limit": 0}, "limit: "),
            ("search_knowledge_base", {"query": "sso", "lmit": 3}, "lmit: "),
            ("search_knowledge_base", {}, "query: "),
            ("create_ticket", {"channel": "fax", "message": "hi", "email": "a@b.co"}, "channel: "),
            ("create_ticket", {"channel": "email", "message": "hi"}, "ValidationError: sender: "),
            (
                "create_ticket",
                {"channel": "email", "message": "hi", "email": "not-an-address"},
                "ValidationError: email: ",
            ),
            (
                "get_customer_history",
                {"ticket_number": "42", "access_token": "x"},
                "ticket_number: ",
            ),
            ("escalate_to_human", {"ticket_number": "TKT-000001", "access_token": "x"}, "reason: "),
        ]
        for tool, args, start in cases:
            message = await _error(client, tool, args)
            assert message.startswith(start), (tool, message)
        assert (await _error(client, "delete_everything", {})).startswith("unknown tool")
