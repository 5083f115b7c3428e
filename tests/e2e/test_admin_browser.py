"""The operators' inbox in Debian's Chromium (Playwright) against a real `fte serve`
(embedded PostgreSQL, a worker answering): sign-in (a wrong token refused), the cookie's
flags, filtering the queue, replying (stored as a person's reply and shown in the
conversation), resolving, the reports page with a report saved through the ReportStore
port, 320 px, and axe-core with no serious violations. Screenshots go to artifacts/."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.test_web_browser import (
    ADMIN,
    Server,
    browser,
    serious_violations,
    shot,
    submit_by_api,
)

pw = pytest.importorskip("playwright.sync_api")

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.slow]
__all__ = ["browser"]  # the module-scoped Chromium fixture, shared

HUMAN = "I want to talk to a human, not a bot. Please get me a person."
HACKED = "Someone hacked my account and changed my password! I am locked out."
BEARER = {"Authorization": f"Bearer {ADMIN}"}


class Inbox:
    """A running service with two tickets handed over: one to support, one to security."""

    def __init__(self, server: Server, data_dir: Path) -> None:
        self.server = server
        self.data_dir = data_dir
        self.support = self.hand_over(HUMAN, "ada@example.com", "general")
        self.security = self.hand_over(HACKED, "grace@example.com", "account")

    def hand_over(self, text: str, email: str, category: str = "general") -> str:
        receipt = submit_by_api(
            self.server, message=text, email=email, category=category, subject="Need some help"
        )
        number: str = receipt["ticket_id"]
        deadline = time.monotonic() + 60
        # the ticket appears once the worker took the form in, then is handed over
        while (found := self.find(number)) is None or found["owner"] != "human":
            assert time.monotonic() < deadline, f"{number} was not handed over"
            time.sleep(0.3)
        return number

    def find(self, number: str) -> dict[str, Any] | None:
        found = httpx.get(f"{self.server.url}/api/v1/tickets", headers=BEARER, timeout=10)
        assert found.status_code == 200
        tickets = [dict(t) for t in found.json() if t["number"] == number]
        return tickets[0] if tickets else None

    def ticket(self, number: str) -> dict[str, Any]:
        found = self.find(number)
        assert found is not None, number
        return found

    def conversation(self, number: str) -> list[dict[str, Any]]:
        ticket = self.ticket(number)
        response = httpx.get(
            f"{self.server.url}/api/v1/conversations/{ticket['conversation_id']}",
            headers=BEARER,
            timeout=10,
        )
        messages: list[dict[str, Any]] = response.json()["messages"]
        return messages

    def save_report(self, kind: str, title: str, html: str) -> int:
        """Through the ReportStore port, into the service's own database."""
        from adapters.storage.postgres.embedded import EmbeddedPostgres
        from adapters.storage.postgres.pool import open_pool
        from adapters.storage.postgres.reports import PostgresReports

        async def save(url: str) -> int:
            pool = await open_pool(url, max_size=1)
            try:
                saved = await PostgresReports(pool).save_report(kind, title, b"{}", html)  # type: ignore[arg-type]
            finally:
                await pool.close()
            return saved.id

        pg = EmbeddedPostgres(self.data_dir / "pg")  # joins the service's running server
        try:
            # in a thread: Playwright's sync API keeps an event loop running in this one
            with ThreadPoolExecutor(max_workers=1) as executor:
                return executor.submit(asyncio.run, save(pg.start())).result()
        finally:
            pg.stop()


@pytest.fixture(scope="module")
def inbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Inbox]:
    data_dir = tmp_path_factory.mktemp("fte-admin")
    running = Server(data_dir)
    try:
        running.wait_ready()
        yield Inbox(running, data_dir)
    finally:
        running.stop()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda exc: errors.append(str(exc)))
    yield opened
    context.close()
    assert errors == [], f"script errors on the page: {errors}"


def sign_in(page: Any, inbox: Inbox, token: str = ADMIN, name: str = "Grace Hopper") -> Any:
    page.goto(f"{inbox.server.url}/admin")
    assert page.url.endswith("/admin/login")
    page.fill("#name", name)
    page.fill("#token", token)
    with page.expect_navigation():
        page.click("#sign-in")
    return page


def listed(page: Any) -> list[str]:
    return [
        str(t)
        for t in page.locator("[data-ticket]").evaluate_all(
            "items => items.map(i => i.dataset.ticket)"
        )
    ]


def test_sign_in_refuses_a_wrong_token_then_sets_a_strict_httponly_cookie(
    inbox: Inbox, page: Any
) -> None:
    responses: list[int] = []
    page.on(
        "response", lambda r: responses.append(r.status) if r.request.method == "POST" else None
    )
    sign_in(page, inbox, token=ADMIN[:-1] + "x")
    assert responses == [401]
    assert page.url.endswith("/admin/login")
    pw.expect(page.locator("#token-error")).to_have_text("That is not the admin token.")
    assert page.locator("#token").get_attribute("aria-invalid") == "true"
    assert page.context.cookies() == []
    shot(page, "admin-login-error")

    page.fill("#token", ADMIN)
    with page.expect_navigation():
        page.click("#sign-in")
    assert page.url == f"{inbox.server.url}/admin"
    pw.expect(page.locator("h1")).to_have_text("Hand-over queue")
    (cookie,) = page.context.cookies()
    assert (cookie["name"], cookie["httpOnly"], cookie["sameSite"], cookie["path"]) == (
        "fte_admin",
        True,
        "Strict",
        "/admin",
    )
    assert cookie["secure"] is False  # plain http on loopback; https sets it (in-process tests)
    assert page.evaluate("document.cookie") == ""  # no script can read it

    page.click("#sign-out")
    assert page.url.endswith("/admin/login")
    page.goto(f"{inbox.server.url}/admin")
    assert page.url.endswith("/admin/login")


def test_the_queue_filters_by_team_urgency_and_channel(inbox: Inbox, page: Any) -> None:
    sign_in(page, inbox)
    everything = listed(page)
    assert {inbox.support, inbox.security} <= set(everything)
    assert everything.index(inbox.security) < everything.index(inbox.support)  # critical first
    shot(page, "admin-queue")

    page.select_option("#filter-team", "security")
    page.click("#apply-filters")
    assert "team=security" in page.url
    assert listed(page) == [inbox.security]
    assert page.locator("#filter-team").input_value() == "security"  # kept after filtering

    page.select_option("#filter-team", "support")
    page.select_option("#filter-urgency", "high")
    page.click("#apply-filters")
    assert inbox.support in listed(page)
    assert inbox.security not in listed(page)

    page.select_option("#filter-team", "")
    page.select_option("#filter-urgency", "")
    page.select_option("#filter-channel", "whatsapp")
    page.click("#apply-filters")
    assert listed(page) == []
    pw.expect(page.locator("#queue-count")).to_contain_text("0 tickets match these filters")


def test_replying_shows_the_reply_stored_as_a_persons(inbox: Inbox, page: Any) -> None:
    sign_in(page, inbox, name="Grace Hopper")
    page.click(f"[data-ticket='{inbox.support}'] .queue-link")
    pw.expect(page.locator("#ticket-title")).to_have_text(inbox.support)
    decision = page.locator("details.decision").first
    decision.locator("summary").click()
    pw.expect(decision).to_contain_text("Handed over to a person.")
    pw.expect(decision).to_contain_text("human")
    pw.expect(decision).to_contain_text("Sentiment")
    shot(page, "admin-ticket")

    answer = "Hello, I am Grace from the team. I have your case & will call you today."
    page.fill("#reply-text", answer)
    page.click("#send-reply")
    pw.expect(page.locator("#flash")).to_have_text("Reply sent to the customer.")
    human = page.locator(".msg-human")
    pw.expect(human).to_have_count(1)
    assert human.locator(".msg-text").inner_text() == answer
    pw.expect(human.locator(".msg-author")).to_have_text("Grace Hopper (person)")

    stored = [m for m in inbox.conversation(inbox.support) if m["author"] == "human"]
    assert [(m["text"], m["author_name"], m["direction"]) for m in stored] == [
        (answer, "Grace Hopper", "outbound")
    ]
    page.fill("#note-text", "Promised a call today.")
    page.click("#add-note")
    pw.expect(page.locator("#notes")).to_contain_text("Promised a call today.")
    shot(page, "admin-ticket-replied")


def test_resolving_takes_the_ticket_out_of_the_queue(inbox: Inbox, page: Any) -> None:
    number = inbox.hand_over(
        "Can I speak to a real person about my account please?", "x@example.com"
    )
    sign_in(page, inbox)
    page.goto(f"{inbox.server.url}/admin/tickets/{number}")
    page.click("#resolve")
    pw.expect(page.locator("#flash")).to_have_text("Resolved.")
    pw.expect(page.locator("#ticket-status")).to_have_text("resolved")
    assert page.locator("#resolve").count() == 0
    assert inbox.ticket(number)["status"] == "resolved"
    page.goto(f"{inbox.server.url}/admin")
    assert number not in listed(page)


def test_the_reports_page_shows_saved_reports(inbox: Inbox, page: Any) -> None:
    sign_in(page, inbox)
    page.click("nav >> text=Reports")
    pw.expect(page.locator("h1")).to_have_text("Reports")
    assert page.locator(".empty-state").count() == 3
    shot(page, "admin-reports-empty")
    report_id = inbox.save_report(
        "digest",
        "Daily digest, 30 Nov 2026",
        "<!doctype html><title>Digest</title><h1>Digest of 30 Nov</h1>"
        '<svg width="10" height="10"><rect width="10" height="10"/></svg>',
    )
    page.reload()
    digest = page.locator("[data-kind=digest]")
    pw.expect(digest.locator(".report-latest a")).to_have_text("Daily digest, 30 Nov 2026")
    assert page.locator(".empty-state").count() == 2
    digest.locator(".report-latest a").click()
    assert page.url.endswith(f"/admin/reports/digest/{report_id}")
    pw.expect(page.locator("h1")).to_have_text("Digest of 30 Nov")


def test_inbox_pages_fit_320_pixels_and_have_no_serious_violations(
    inbox: Inbox, browser: Any
) -> None:
    context = browser.new_context(viewport={"width": 320, "height": 700})
    page = context.new_page()
    found: dict[str, list[str]] = {}
    try:
        page.goto(f"{inbox.server.url}/admin/login")
        found["login"] = serious_violations(page)
        page.click("#sign-in")  # with both errors showing
        found["login with errors"] = serious_violations(page)
        page.fill("#name", "Ada")
        page.fill("#token", ADMIN)
        page.click("#sign-in")
        pages = {
            "queue": "/admin",
            "ticket": f"/admin/tickets/{inbox.security}",
            "reports": "/admin/reports",
        }
        for name, path in pages.items():
            page.goto(f"{inbox.server.url}{path}")
            page.locator("details").evaluate_all("ds => ds.forEach(d => d.open = true)")
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 320, f"{name} scrolls sideways ({width}px)"
            shot(page, f"admin-{name}-320")
            found[name] = serious_violations(page)
    finally:
        context.close()
    assert found == {key: [] for key in found}


def test_keyboard_reaches_every_control_with_visible_focus(inbox: Inbox, page: Any) -> None:
    sign_in(page, inbox)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip-link"
    seen = []
    for _ in range(10):
        page.keyboard.press("Tab")
        active = page.evaluate("document.activeElement.id || document.activeElement.tagName")
        seen.append(active)
        outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
        assert outline == "solid", f"no visible focus on {active}"
    assert {"sign-out", "filter-team", "filter-urgency", "filter-channel", "apply-filters"} <= set(
        seen
    )
