"""The customers' pages in-process (no browser): what the server renders and how the plain
form post, the success page, the status page and the lookup behave without JavaScript."""

from __future__ import annotations

import html
import json
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import markupsafe
import msgspec
from litestar import Litestar
from litestar.testing import AsyncTestClient

from service.forms import CATEGORIES, LIMITS, PRIORITIES
from service.web import linkify
from service.web_rules import client_rules

Client = AsyncTestClient[Litestar]
FORM = {
    "name": "Ana Ruiz",
    "email": "ana@example.com",
    "subject": "Password reset",
    "category": "account",
    "priority": "normal",
    "message": "How do I reset my password? I forgot it.",
}
HTML = {"Accept": "text/html"}


async def post_form(client: Client, **changes: str) -> Any:
    return await client.post("/support", data={**FORM, **changes}, follow_redirects=False)


async def sent_ticket(client: Client, **changes: str) -> tuple[str, str]:
    response = await post_form(client, **changes)
    assert response.status_code == 303, response.text
    location = urlsplit(response.headers["location"])
    ticket = location.path.rsplit("/", 1)[1]
    return ticket, parse_qs(location.query)["token"][0]


def error_of(page: str, field: str) -> str:
    match = re.search(rf'<p class="field-error" id="{field}-error"( hidden)?>([^<]*)</p>', page)
    assert match, f"no error element for {field}"
    return "" if match.group(1) else html.unescape(match.group(2))


def control(page: str, field: str) -> str:
    match = re.search(rf'<(input|select|textarea) id="{field}"[^>]*>', page)
    assert match, f"no control {field}"
    return match.group(0)


async def test_form_page_renders_the_servers_rules(client: Client) -> None:
    response = await client.get("/")
    assert response.status_code == 200
    page = response.text
    for field, (low, high) in LIMITS.items():
        assert f'minlength="{low}" maxlength="{high}"' in control(page, field)
    for category in CATEGORIES:
        assert f'<option value="{category}"' in page
    for priority in PRIORITIES:
        assert f'id="priority-{priority}" name="priority" value="{priority}"' in page
    for field in ("name", "email", "phone", "subject", "category", "message"):
        assert f'<label for="{field}">' in page
    embedded = re.search(r'<script type="application/json" id="form-rules">(.*?)</script>', page)
    assert embedded
    rules = json.loads(embedded.group(1))
    assert rules["limits"] == {k: list(v) for k, v in LIMITS.items()}
    assert rules["categories"] == list(CATEGORIES)
    assert rules == json.loads(msgspec.json.encode(client_rules()))


async def test_pages_send_security_headers(client: Client) -> None:
    response = await client.get("/")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_plain_post_with_errors_keeps_values_and_ties_errors_to_fields(
    client: Client,
) -> None:
    response = await post_form(
        client, name="   ", email="ana@", subject="Hi", phone="555 0101", message="<b>hi</b>"
    )
    assert response.status_code == 400
    page = response.text
    assert error_of(page, "name") == "Enter your name."
    assert error_of(page, "email") == "Enter an email address like name@example.com."
    assert error_of(page, "subject") == "The subject must be at least 5 characters."
    assert error_of(page, "phone") == "Start with + and the country code, like +44 7700 900123."
    assert error_of(page, "message") == "Your message must be at least 10 characters."
    assert error_of(page, "category") == ""
    email = control(page, "email")
    assert 'aria-invalid="true"' in email
    assert 'aria-describedby="email-error"' in email
    assert 'aria-describedby="phone-hint phone-error"' in control(page, "phone")
    assert "aria-invalid" not in control(page, "category")
    assert 'value="ana@"' in email  # what was typed is kept
    assert "&lt;b&gt;hi&lt;/b&gt;</textarea>" in page  # and escaped
    assert '<a href="#name">Enter your name.</a>' in page  # the summary links each field
    assert "<title>Error: Contact support" in page


async def test_plain_post_success_redirects_to_the_ticket_page(client: Client) -> None:
    ticket, token = await sent_ticket(client)
    assert re.fullmatch(r"TKT-\d{6}", ticket)
    page = await client.get(f"/support/{ticket}?token={token}")
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    assert f'<p class="ticket-number" data-slot="ticket">{ticket}</p>' in page.text
    status_link = f"https://support.example.com/status/{ticket}?token={token}"
    assert f'value="{status_link}"' in page.text
    assert f'href="{status_link}"' in page.text


async def test_status_page_shows_the_conversation_escaped(client: Client) -> None:
    text = 'Is <script>alert("x")</script> a problem?\nSecond line & more.'
    ticket, token = await sent_ticket(client, message=text)
    page = await client.get(f"/status/{ticket}?token={token}")
    assert page.status_code == 200
    assert "<script>alert" not in page.text
    escaped = str(markupsafe.escape(text))
    assert f'<div class="msg-text">{escaped}</div>' in page.text
    assert f'<h1 id="ticket-title">Ticket {ticket}</h1>' in page.text
    assert 'id="waiting">' in page.text  # no reply yet: the waiting note shows
    names = re.search(r'id="status-names">(.*?)</script>', page.text)
    assert names
    assert json.loads(names.group(1))["active"] == ["open", "pending", "escalated"]


async def test_wrong_token_and_unknown_ticket_look_the_same(client: Client) -> None:
    ticket, _ = await sent_ticket(client)
    wrong = await client.get(f"/status/{ticket}?token=not-the-token")
    unknown = await client.get("/status/TKT-999999?token=not-the-token")
    assert wrong.status_code == unknown.status_code == 404
    assert "We could not find a ticket with that number and access code" in wrong.text
    assert wrong.text.replace(ticket, "TKT-999999") == unknown.text
    for path in (f"/support/{ticket}?token=nope", f"/status/{ticket}"):
        page = await client.get(path)
        assert 'id="lookup-title"' in page.text
        assert "msg-text" not in page.text


async def test_lookup_form_leads_to_the_status_page(client: Client) -> None:
    ticket, token = await sent_ticket(client)
    empty = await client.get("/status")
    assert empty.status_code == 200
    assert 'action="/status"' in empty.text
    found = await client.get(
        f"/status?ticket={ticket.lower()}&token={token}", follow_redirects=False
    )
    assert found.status_code == 303
    assert found.headers["location"] == f"/status/{ticket}?token={token}"
    only_number = await client.get(f"/status?ticket={ticket}")
    assert f'value="{ticket}"' in only_number.text


async def test_unknown_page_is_html_for_browsers_and_json_for_the_api(client: Client) -> None:
    page = await client.get("/no/such/page", headers=HTML)
    assert page.status_code == 404
    assert "Page not found" in page.text
    assert page.headers["content-type"].startswith("text/html")
    api = await client.get("/api/v1/nothing", headers=HTML)
    assert api.status_code == 404
    assert api.json()["error"] == "not_found"


async def test_static_files_are_served_with_a_content_hash(client: Client) -> None:
    page = (await client.get("/")).text
    for name in ("app.css", "app.js"):
        match = re.search(rf"/static/{name}\?v=([0-9a-f]{{10}})", page)
        assert match, name
        asset = await client.get(match.group(0))
        assert asset.status_code == 200
        assert "max-age=86400" in asset.headers["cache-control"]


def test_message_links_are_made_from_escaped_text() -> None:
    text = 'See https://help.tasklane.io/reset?x=1&y=2. Not javascript:alert(1) or <b>"this"</b>'
    assert str(linkify(text)) == (
        'See <a href="https://help.tasklane.io/reset?x=1&amp;y=2" rel="noopener noreferrer'
        ' nofollow">https://help.tasklane.io/reset?x=1&amp;y=2</a>. Not javascript:alert(1) or'
        " &lt;b&gt;&#34;this&#34;&lt;/b&gt;"
    )
    assert str(linkify("(https://a.example/x)")) == (
        '(<a href="https://a.example/x" rel="noopener noreferrer nofollow">https://a.example/x</a>)'
    )
