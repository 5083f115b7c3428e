"""The operators' inbox in-process (no browser): sign-in and its cookie, CSRF, the queue's
filters, the actions, notes, the reports page, and the alerts on /metrics and as banners."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from fte_core.models import Author, Channel, InboundMessage, Owner, TicketStatus
from service.bootstrap import Runtime
from service.settings import Settings
from tests.e2e.conftest import ADMIN, app_for

Client = AsyncTestClient[Litestar]


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[Client]:
    """Over https, as the settings' public URL says: the session cookie is Secure, so a
    client on plain http would never send it back."""
    async with AsyncTestClient(app=app_for(settings), base_url="https://testserver.local") as c:
        yield c


def runtime(client: Client) -> Runtime:
    found: Runtime = client.app.state.service.runtime
    return found


async def escalate(client: Client, text: str, *, channel: Channel = Channel.WEB_FORM) -> str:
    """A customer message the rules hand over; returns its ticket number."""
    n = len(await runtime(client).store.tickets(limit=500))
    message = InboundMessage(
        channel=channel,
        provider_message_id=f"m-{n}-{channel.value}",
        text=text,
        received_at=datetime.now(UTC),
        sender_email=f"customer{n}@example.com" if channel is not Channel.WHATSAPP else None,
        sender_phone=f"+4477009001{n:02d}" if channel is Channel.WHATSAPP else None,
        sender_name=f"Customer {n}",
        subject="Help" if channel is not Channel.WHATSAPP else None,
    )
    outcome = await runtime(client).agent.handle(message)
    assert outcome.ticket.status is TicketStatus.ESCALATED, outcome.record
    return outcome.ticket.number


async def sign_in(client: Client, name: str = "Grace Hopper") -> str:
    response = await client.post(
        "/admin/login", data={"name": name, "token": ADMIN}, follow_redirects=False
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/admin"
    return response.headers["set-cookie"]


def csrf_of(page: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match, "no CSRF token on the page"
    return match.group(1)


def tickets_listed(page: str) -> list[str]:
    return re.findall(r'data-ticket="(TKT-\d+)"', page)


async def test_the_inbox_needs_a_sign_in(client: Client) -> None:
    for path in ("/admin", "/admin/reports", "/admin/tickets/TKT-000001"):
        response = await client.get(path, follow_redirects=False)
        assert (response.status_code, response.headers["location"]) == (303, "/admin/login")
    login = await client.get("/admin/login")
    assert login.status_code == 200
    assert 'type="password"' in login.text


async def test_a_wrong_token_is_refused_and_no_cookie_is_set(client: Client) -> None:
    response = await client.post(
        "/admin/login", data={"name": "Eve", "token": ADMIN[:-1] + "b"}, follow_redirects=False
    )
    assert response.status_code == 401
    assert "set-cookie" not in response.headers
    assert "That is not the admin token." in response.text
    assert 'aria-invalid="true"' in response.text
    missing_name = await client.post("/admin/login", data={"name": " ", "token": ADMIN})
    assert missing_name.status_code == 401
    assert "Enter your name" in missing_name.text
    assert (await client.get("/admin", follow_redirects=False)).status_code == 303


async def test_the_session_cookie_flags(client: Client) -> None:
    cookie = await sign_in(client)
    parts = [p.strip().lower() for p in cookie.split(";")]
    assert parts[0].startswith("fte_admin=")
    assert "httponly" in parts
    assert "samesite=strict" in parts
    assert "path=/admin" in parts
    # the test settings say customers reach the service over https
    assert "secure" in parts
    assert (await client.get("/admin")).status_code == 200


async def test_a_tampered_cookie_is_no_session(client: Client) -> None:
    await sign_in(client)
    value = client.cookies.get("fte_admin")
    assert value
    payload, signature = value.split(".")
    for forged in (payload[:-2] + "AA." + signature, payload + "." + signature[::-1], "x"):
        client.cookies.clear()
        client.cookies.set("fte_admin", forged)
        response = await client.get("/admin", follow_redirects=False)
        assert response.status_code == 303


async def test_no_secure_flag_over_plain_http_unless_a_proxy_says_https(
    settings: Settings,
) -> None:
    plain = msgspec.structs.replace(settings, public_base_url="http://127.0.0.1:8000")
    async with AsyncTestClient(app=app_for(plain)) as http:
        cookie = await sign_in(http)
        assert "secure" not in [p.strip().lower() for p in cookie.split(";")]
        response = await http.post(
            "/admin/login",
            data={"name": "Ada", "token": ADMIN},
            headers={"X-Forwarded-Proto": "https"},
            follow_redirects=False,
        )
        flags = [p.strip().lower() for p in response.headers["set-cookie"].split(";")]
        assert "secure" in flags


async def test_forms_without_the_csrf_token_are_refused(client: Client) -> None:
    number = await escalate(client, "I want to talk to a human, not a bot.")
    await sign_in(client)
    page = (await client.get(f"/admin/tickets/{number}")).text
    token = csrf_of(page)
    for data in ({"text": "Hello"}, {"text": "Hello", "csrf": "0" * 64}):
        refused = await client.post(f"/admin/tickets/{number}/reply", data=data)
        assert refused.status_code == 403
        assert "This form has expired" in refused.text
    cross_site = await client.post(
        f"/admin/tickets/{number}/resolve",
        data={"csrf": token},
        headers={"Origin": "https://evil.example"},
    )
    assert cross_site.status_code == 403
    ticket = await runtime(client).store.get_ticket(number)
    assert ticket is not None
    assert ticket.status is TicketStatus.ESCALATED
    messages = await runtime(client).store.conversation_messages(ticket.conversation_id)
    assert not any(m.author is Author.HUMAN for m in messages)
    assert (await client.post("/admin/logout", data={})).status_code == 403


async def test_queue_filters_by_team_urgency_channel_and_age(client: Client) -> None:
    human = await escalate(client, "Please let me speak to a real person.")
    security = await escalate(client, "Someone hacked my account and changed my password!")
    whatsapp = await escalate(client, "can i talk to a human agent pls", channel=Channel.WHATSAPP)
    await sign_in(client)
    everything = tickets_listed((await client.get("/admin")).text)
    assert set(everything) == {human, security, whatsapp}
    assert everything[0] == security  # critical first

    async def listed(**query: str) -> list[str]:
        response = await client.get("/admin", params=query)
        assert response.status_code == 200
        return tickets_listed(response.text)

    assert await listed(team="security") == [security]
    assert set(await listed(team="support")) == {human, whatsapp}
    assert await listed(team="billing") == []
    assert await listed(urgency="critical") == [security]
    assert await listed(channel="whatsapp") == [whatsapp]
    assert await listed(age="1") == []  # nobody has waited an hour yet
    assert set(await listed(team="nonsense")) == set(everything)  # ignored, not an error
    page = (await client.get("/admin", params={"team": "billing"})).text
    assert "No ticket matches these filters." in page


async def test_reply_note_release_and_resolve_from_the_ticket_page(client: Client) -> None:
    number = await escalate(client, "I want to talk to a human, not a bot.")
    await sign_in(client, "Grace Hopper")
    page = (await client.get(f"/admin/tickets/{number}")).text
    assert "Why: Handed over to a person." in page
    assert "human_request" in page or "human request" in page
    token = csrf_of(page)

    empty = await client.post(f"/admin/tickets/{number}/reply", data={"csrf": token, "text": " "})
    assert empty.status_code == 400
    assert "the reply must not be empty" in empty.text

    sent = await client.post(
        f"/admin/tickets/{number}/reply",
        data={"csrf": token, "text": "Hello, I am Grace. I will sort this out."},
        follow_redirects=False,
    )
    assert sent.status_code == 303
    page = (await client.get(sent.headers["location"])).text
    assert "Reply sent to the customer." in page
    assert "Grace Hopper (person)" in page
    store = runtime(client).store
    ticket = await store.get_ticket(number)
    assert ticket is not None
    assert ticket.owner is Owner.HUMAN
    messages = await store.conversation_messages(ticket.conversation_id)
    human = [m for m in messages if m.author is Author.HUMAN]
    assert [(m.text, m.author_name) for m in human] == [
        ("Hello, I am Grace. I will sort this out.", "Grace Hopper")
    ]

    noted = await client.post(
        f"/admin/tickets/{number}/note", data={"csrf": token, "text": "Called them <b>back</b>."}
    )
    assert noted.status_code == 200  # followed to the ticket page
    assert "Called them &lt;b&gt;back&lt;/b&gt;." in noted.text
    assert [n.text for n in await runtime(client).notes.notes(number)] == [
        "Called them <b>back</b>."
    ]

    resolved = await client.post(f"/admin/tickets/{number}/resolve", data={"csrf": token})
    assert "Resolved." in resolved.text
    ticket = await store.get_ticket(number)
    assert ticket is not None
    assert (ticket.status, ticket.owner, ticket.assignee) == (
        TicketStatus.RESOLVED,
        Owner.BOT,
        "Grace Hopper",
    )
    assert number not in tickets_listed((await client.get("/admin")).text)


async def test_release_hands_the_ticket_back(client: Client) -> None:
    number = await escalate(client, "Please let me speak to a real person.")
    await sign_in(client)
    token = csrf_of((await client.get(f"/admin/tickets/{number}")).text)
    released = await client.post(f"/admin/tickets/{number}/release", data={"csrf": token})
    assert "Released: the agent answers this customer again." in released.text
    ticket = await runtime(client).store.get_ticket(number)
    assert ticket is not None
    assert ticket.owner is Owner.BOT


async def test_unknown_ticket_and_action(client: Client) -> None:
    await sign_in(client)
    missing = await client.get("/admin/tickets/TKT-999999")
    assert missing.status_code == 404
    number = await escalate(client, "Please let me speak to a real person.")
    token = csrf_of((await client.get(f"/admin/tickets/{number}")).text)
    bad = await client.post(f"/admin/tickets/{number}/delete", data={"csrf": token})
    assert bad.status_code == 404


async def test_reports_page_lists_the_latest_of_each_kind(client: Client) -> None:
    await sign_in(client)
    empty = (await client.get("/admin/reports")).text
    assert empty.count("None yet.") == 3
    reports = runtime(client).reports
    await reports.save_report("digest", "Digest 29 Nov", b'{"day": 29}', "<h1>Old digest</h1>")
    latest = await reports.save_report(
        "digest", "Digest 30 Nov", b'{"day": 30}', "<h1>Digest of 30 Nov</h1>"
    )
    page = (await client.get("/admin/reports")).text
    assert page.count("None yet.") == 2
    assert f'href="/admin/reports/digest/{latest.id}">Digest 30 Nov</a>' in page
    assert "Earlier (1)" in page
    shown = await client.get(f"/admin/reports/digest/{latest.id}")
    assert shown.status_code == 200
    assert shown.text == "<h1>Digest of 30 Nov</h1>"
    assert "sandbox" in shown.headers["content-security-policy"]
    assert (await client.get("/admin/reports/shadow/1")).status_code == 404
    assert (await client.get("/admin/reports/other/1")).status_code == 404


async def test_sign_out_ends_the_session(client: Client) -> None:
    await sign_in(client)
    page = (await client.get("/admin")).text
    out = await client.post("/admin/logout", data={"csrf": csrf_of(page)}, follow_redirects=False)
    assert out.status_code == 303
    assert "max-age=0" in out.headers["set-cookie"].lower()
    assert (await client.get("/admin", follow_redirects=False)).status_code == 303


@pytest.mark.parametrize("path", ["/admin", "/admin/login"])
async def test_pages_send_security_headers(client: Client, path: str) -> None:
    if path == "/admin":
        await sign_in(client)
    response = await client.get(path)
    assert "script-src 'none'" in response.headers["content-security-policy"]
    assert response.headers["cache-control"] == "no-store"


def metric(text: str, name: str, **labels: str) -> float | None:
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        series, _, value = line.rpartition(" ")
        key = series.split("{")[0]
        found = ",".join(sorted(series[len(key) + 1 : -1].split(","))) if "{" in series else ""
        if key == name and found == wanted:
            return float(value)
    return None


async def test_metrics_and_banners_show_the_escalation_rate_alert(client: Client) -> None:
    for _ in range(4):
        await escalate(client, "Please let me speak to a real person.")
    monitor: Any = client.app.state.monitor
    await monitor.refresh()
    text = (await client.get("/metrics")).text
    assert metric(text, "fte_escalation_rate", channel="web_form") == 1.0
    assert metric(text, "fte_replies_in_window", channel="web_form") == 4.0
    assert metric(text, "fte_messages_total", channel="web_form", direction="inbound") == 4.0
    assert metric(text, "fte_escalations_total", channel="web_form", reason="human_request") == 4.0
    assert metric(text, "fte_dead_letters") == 0.0
    assert metric(text, "fte_policy_disagreements_total") == 0.0
    assert metric(text, "fte_rule_evaluation_seconds_count", stage="input_rules") == 4.0
    assert metric(text, "fte_alert_active", alert="FteEscalationRateHigh", channel="web_form") == 1
    await sign_in(client)
    page = html.unescape((await client.get("/admin")).text)
    assert 'data-alert="FteEscalationRateHigh"' in page
    assert "web form: 100% of 4 replies were handed to a person" in page
