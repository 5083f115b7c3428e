"""Every endpoint's contract in-process: status codes, bodies, and each kind of bad input
getting a precise 4xx (never a 500)."""

from __future__ import annotations

from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.e2e.conftest import ADMIN

Client = AsyncTestClient[Litestar]
AUTH = {"Authorization": f"Bearer {ADMIN}"}
FORM = {
    "name": "Ana Ruiz",
    "email": "ana@example.com",
    "subject": "Password reset",
    "category": "account",
    "priority": "normal",
    "message": "How do I reset my password? I forgot it.",
}


async def submit(client: Client, **changes: Any) -> dict[str, Any]:
    response = await client.post("/api/v1/support/form", json={**FORM, **changes})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_form_201_and_status_with_token(client: Client) -> None:
    body = await submit(client)
    assert set(body) == {"ticket_id", "status", "access_token", "status_url", "message"}
    assert body["ticket_id"].startswith("TKT-")
    assert body["status_url"] == (
        f"https://support.example.com/status/{body['ticket_id']}?token={body['access_token']}"
    )
    view = await client.get(f"/api/v1/tickets/{body['ticket_id']}?token={body['access_token']}")
    assert view.status_code == 200
    data = view.json()
    assert set(data) == {"ticket_id", "status", "created_at", "updated_at", "messages"}
    assert data["messages"][0] == {
        "direction": "inbound",
        "author": "customer",
        "channel": "web_form",
        "text": FORM["message"],
        "created_at": data["messages"][0]["created_at"],
    }
    by_header = await client.get(
        f"/api/v1/tickets/{body['ticket_id']}", headers={"X-Ticket-Token": body["access_token"]}
    )
    assert by_header.status_code == 200


async def test_form_encoded_is_accepted(client: Client) -> None:
    response = await client.post("/api/v1/support/form", data=FORM)
    assert response.status_code == 201


async def test_wrong_token_and_unknown_ticket_are_the_same_404(client: Client) -> None:
    body = await submit(client)
    wrong = await client.get(f"/api/v1/tickets/{body['ticket_id']}?token=nope")
    unknown = await client.get(f"/api/v1/tickets/TKT-999999?token={body['access_token']}")
    missing = await client.get(f"/api/v1/tickets/{body['ticket_id']}")
    assert wrong.status_code == unknown.status_code == missing.status_code == 404
    assert wrong.json() == unknown.json() == missing.json()


async def test_bad_form_input_names_every_field(client: Client) -> None:
    response = await client.post(
        "/api/v1/support/form",
        json={**FORM, "email": "not-an-email", "message": "short", "colour": "red"},
    )
    assert response.status_code == 400
    fields = response.json()["fields"]
    assert set(fields) == {"email", "message", "colour"}
    assert fields["colour"] == "unknown field"
    wrong_type = await client.post("/api/v1/support/form", json={**FORM, "name": 42})
    assert (wrong_type.status_code, wrong_type.json()["fields"]) == (400, {"name": "must be text"})
    assert wrong_type.json()["detail"] == "name: must be text"  # each field named once


async def test_malformed_json_400_not_an_object_400(client: Client) -> None:
    bad = await client.post(
        "/api/v1/support/form", content=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert (bad.status_code, bad.json()["error"]) == (400, "validation")
    array = await client.post("/api/v1/support/form", json=[1, 2])
    assert array.status_code == 400


async def test_unsupported_media_type_415_and_oversize_413(client: Client) -> None:
    text = await client.post(
        "/api/v1/support/form", content=b"hello", headers={"Content-Type": "text/plain"}
    )
    assert text.status_code == 415
    huge = await client.post("/api/v1/support/form", json={**FORM, "message": "x" * 100_000})
    assert huge.status_code == 413


async def test_operator_endpoints_need_the_admin_token(client: Client) -> None:
    for path in (
        "/api/v1/tickets",
        "/api/v1/metrics/channels",
        "/api/v1/customers/lookup?email=a@b.co",
    ):
        assert (await client.get(path)).status_code == 401
        wrong = await client.get(path, headers={"Authorization": "Bearer " + "b" * 40})
        assert wrong.status_code == 401


async def test_hand_over_queue_reply_release_resolve(client: Client) -> None:
    body = await submit(client, message="I want to talk to a human about my workspace please")
    number = body["ticket_id"]
    runtime = client.app.state.service.runtime
    receipt = await runtime.store.receipt(number)
    outcome = await runtime.agent.handle(receipt.message)  # what the worker does
    assert outcome.record.action == "escalate"
    queue = await client.get("/api/v1/tickets?status=escalated", headers=AUTH)
    assert [t["number"] for t in queue.json()] == [number]
    assert (await client.get("/api/v1/tickets?team=billing", headers=AUTH)).json() == []
    reply = await client.post(
        f"/api/v1/tickets/{number}/reply",
        json={"text": "Hello, Sam here.", "operator": "Sam"},
        headers=AUTH,
    )
    assert reply.status_code == 201
    assert (reply.json()["author"], reply.json()["author_name"]) == ("human", "Sam")
    view = await client.get(f"/api/v1/tickets/{number}?token={body['access_token']}")
    assert [m["author"] for m in view.json()["messages"]] == ["customer", "agent", "human"]
    released = await client.post(
        f"/api/v1/tickets/{number}/release", json={"operator": "Sam"}, headers=AUTH
    )
    assert (released.status_code, released.json()["owner"]) == (200, "bot")
    resolved = await client.post(
        f"/api/v1/tickets/{number}/resolve", json={"operator": "Sam"}, headers=AUTH
    )
    assert resolved.json()["status"] == "resolved"
    typo = await client.post(
        f"/api/v1/tickets/{number}/resolve", json={"operatr": "Sam"}, headers=AUTH
    )
    assert typo.status_code == 400
    unknown = await client.post(
        "/api/v1/tickets/TKT-999999/resolve", json={"operator": "Sam"}, headers=AUTH
    )
    assert unknown.status_code == 404
    stored = await runtime.store.get_ticket(number)
    conversation = await client.get(f"/api/v1/conversations/{stored.conversation_id}", headers=AUTH)
    assert conversation.status_code == 200
    assert conversation.json()["messages"][1]["record"]["action"] == "escalate"
    lookup = await client.get("/api/v1/customers/lookup?email=ANA@example.com", headers=AUTH)
    assert [t["number"] for t in lookup.json()["tickets"]] == [number]
    metrics = await client.get("/api/v1/metrics/channels?hours=1", headers=AUTH)
    web = next(c for c in metrics.json()["channels"] if c["channel"] == "web_form")
    assert (web["messages_in"], web["escalations"]) == (1, 1)
    assert web["escalations_by_reason"] == {"human_request": 1}


async def test_health_ready_metrics_schema(client: Client) -> None:
    assert (await client.get("/api/v1/health")).json() == {"status": "ok"}
    ready = await client.get("/api/v1/ready")
    assert ready.status_code == 200
    assert ready.json()["ready"] is True
    assert ready.json()["ruleset_version"]
    await client.get("/api/v1/health")
    metrics = await client.get("/metrics")
    assert "fte_http_requests_total" in metrics.text
    schema = await client.get("/schema/openapi.json")
    assert "/api/v1/support/form" in schema.json()["paths"]
