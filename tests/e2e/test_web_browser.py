"""The customers' pages in Debian's Chromium (driven by Playwright) against a real
`fte serve` (embedded PostgreSQL, its own data directory, a free port): checks before
sending, sending, the success view, the status page watching for replies, the plain form
post without JavaScript, keyboard use, 320 px, and axe-core's accessibility rules.

Screenshots of each view are saved in tests/e2e/artifacts/ (kept out of git)."""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.forms import CATEGORIES, FIELDS, LIMITS, PRIORITIES, FormErrors, parse_form
from service.web_rules import friendly_errors

pw = pytest.importorskip("playwright.sync_api")
axe_module = pytest.importorskip("axe_playwright_python.sync_playwright")

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(__file__).parent / "artifacts"
ADMIN = "browser-tests-admin-token-0123456789abcdef"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.slow]

VALID = {
    "name": "Ada Lovelace",
    "email": "ada@example.com",
    "subject": "Password reset email never arrives",
    "message": "I asked for a password reset twice but no email came. What can I do?",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
    """`fte serve` in a subprocess; stopped with SIGTERM (it drains, then exits)."""

    def __init__(self, data_dir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("FTE_")}
        env.update(
            FTE_DATA_DIR=str(data_dir),
            FTE_HOST="127.0.0.1",
            FTE_PORT=str(self.port),
            FTE_ADMIN_TOKEN=ADMIN,
            FTE_DIGEST_HOUR="-1",  # no daily digest: these pages start with no reports
        )
        self.log = (data_dir / "serve.log").open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "serve"],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.log_path = data_dir / "serve.log"

    def wait_ready(self, seconds: float = 120) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"fte serve exited: {self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/api/v1/ready", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise AssertionError("fte serve did not become ready")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("fte-serve"))
    try:
        running.wait_ready()
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed (apt-get install chromium)")
    ARTIFACTS.mkdir(exist_ok=True)
    with pw.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda exc: errors.append(str(exc)))
    yield opened
    context.close()
    assert errors == [], f"script errors on the page: {errors}"


def shot(page: Any, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def fill_valid(page: Any, **changes: str) -> None:
    values = {**VALID, **changes}
    for field in ("name", "email", "subject", "message"):
        page.fill(f"#{field}", values[field])
    page.select_option("#category", "account")


def error_text(page: Any, field: str) -> str:
    box = page.locator(f"#{field}-error")
    return "" if box.is_hidden() else str(box.inner_text())


def submit_by_api(server: Server, **changes: str) -> dict[str, Any]:
    form = {**VALID, "category": "account", **changes}
    response = httpx.post(f"{server.url}/api/v1/support/form", json=form, timeout=10)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def messages_of(server: Server, receipt: dict[str, Any]) -> list[dict[str, Any]]:
    response = httpx.get(
        f"{server.url}/api/v1/tickets/{receipt['ticket_id']}",
        headers={"X-Ticket-Token": receipt["access_token"]},
        timeout=10,
    )
    assert response.status_code == 200
    found: list[dict[str, Any]] = response.json()["messages"]
    return found


def serious_violations(page: Any) -> list[str]:
    results = axe_module.Axe().run(page)
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']]}"
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def test_field_errors_show_without_a_request(server: Server, page: Any) -> None:
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if r.method != "GET" else None)
    page.goto(f"{server.url}/")
    shot(page, "form")
    page.fill("#name", "A")
    page.fill("#email", "ada@example")
    page.fill("#phone", "020 7946 0958")
    page.fill("#subject", "Hi")
    page.fill("#message", "help")
    page.click("#submit")

    expected = {
        "name": "Your name must be at least 2 characters.",
        "email": "Enter an email address like name@example.com.",
        "phone": "Start with + and the country code, like +44 7700 900123.",
        "subject": "The subject must be at least 5 characters.",
        "category": "Choose a category.",
        "message": "Your message must be at least 10 characters.",
    }
    for field, message in expected.items():
        assert error_text(page, field) == message
        control = page.locator(f"#{field}")
        assert control.get_attribute("aria-invalid") == "true"
        assert f"{field}-error" in (control.get_attribute("aria-describedby") or "")
    assert page.evaluate("document.activeElement.id") == "name"  # the first error
    assert page.locator("#error-summary li").count() == 6
    assert page.title().startswith("Error: ")
    assert sent == []  # nothing left the browser
    shot(page, "form-errors")

    page.fill("#email", "ada@example.com")  # fixing a field clears its error at once
    assert error_text(page, "email") == ""
    assert page.locator("#email").get_attribute("aria-invalid") is None
    assert page.locator("#email").get_attribute("aria-describedby") is None
    assert sent == []


def edge_value(rng: random.Random, field: str) -> str:
    pieces = [
        "a", "Z", "é", "7", "٣", "😀", "İ", " ", "\t", "\n", "\u00a0", "\u2003", "\ufeff",
        "\x1c", "\x85", "@", ".", "+", "-", "(", ")", "/", "0", "00", "whatsapp:", "WhatsApp:",
        ",", "<", "'",
    ]  # fmt: skip
    choice = rng.random()
    if field in LIMITS and choice < 0.4:
        low, high = LIMITS[field]
        size = rng.choice([low - 1, low, high, high + 1])
        pad = rng.choice(["", " ", "\u00a0", "\n"])
        return pad + rng.choice(["x", "é", "😀"]) * max(size, 0) + pad
    if field == "email" and choice < 0.7:
        local = rng.choice(["ada", "a.b", "", "a b", "A@B", "ÅSA"])
        domain = rng.choice(["example.com", "example", ".com", "ex..com", "exa mple.com", "b.c"])
        return rng.choice(["", " "]) + f"{local}@{domain}" + rng.choice(["", "\n"])
    if field == "phone" and choice < 0.7:
        prefix = rng.choice(["+", "00", "", "whatsapp:+", "+0", "0"])
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(5, 17)))
        return prefix + rng.choice(["", " ", "-", "(", "٣"]).join([digits[:3], digits[3:]])
    if field == "category":
        return rng.choice([*CATEGORIES, "", " general", "General", "sales"])
    if field == "priority":
        return rng.choice([*PRIORITIES, "", " ", "urgent", "HIGH"])
    return "".join(rng.choice(pieces) for _ in range(rng.randint(0, 14)))


def server_says(case: dict[str, str]) -> dict[str, str]:
    try:
        parse_form(case)
    except FormErrors as exc:
        return friendly_errors(exc.fields)
    return {}


def test_the_pages_checks_match_the_servers(server: Server, page: Any) -> None:
    """The page's script and parse_form agree on every field of a few thousand forms,
    edge cases included (whitespace kinds, lengths at the limits, emoji, phone shapes)."""
    rng = random.Random(20261130)
    base = {**VALID, "category": "account", "priority": "normal", "phone": "+44 7700 900123"}
    cases = [
        {field: edge_value(rng, field) for field in FIELDS if rng.random() < 0.9}
        for _ in range(1500)
    ] + [
        {field: edge_value(rng, field) if rng.random() < 0.2 else base[field] for field in FIELDS}
        for _ in range(1500)
    ]
    cases.append({**VALID, "category": "account", "phone": "+44 7700 900123"})
    page.goto(f"{server.url}/")
    browser_says = page.evaluate("cases => cases.map(c => window.fteValidate(c))", cases)
    disagreements = [
        (case, server_says(case), seen)
        for case, seen in zip(cases, browser_says, strict=True)
        if server_says(case) != seen
    ]
    assert disagreements == []
    valid = sum(1 for case in cases if not server_says(case))
    assert 200 < valid < len(cases) - 200  # the cases reach both outcomes


def test_submit_shows_the_ticket_and_the_status_page_the_agents_reply(
    server: Server, page: Any
) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.goto(f"{server.url}/")
    fill_valid(page, phone="+44 7700 900123")
    held: list[Any] = []
    page.route("**/api/v1/support/form", lambda route: held.append(route))
    page.click("#submit")
    button = page.locator("#submit")
    pw.expect(button).to_be_disabled()  # while the request is on its way
    pw.expect(button).to_have_text("Sending…")
    assert page.locator("#support-form").get_attribute("aria-busy") == "true"
    page.click("#submit", force=True)  # a second click sends nothing more
    assert len(held) == 1
    held[0].continue_()

    pw.expect(page.locator("#sent")).to_be_visible()
    ticket = page.locator("#sent [data-slot=ticket]").inner_text()
    assert re.fullmatch(r"TKT-\d{6}", ticket)
    assert page.evaluate("document.activeElement.id") == "sent-title"
    link = page.input_value("#status-link")
    assert link.startswith(f"{server.url}/status/{ticket}?token=")
    token = page.locator("#sent [data-slot=token]").inner_text()
    assert link.endswith(f"?token={token}")
    page.click("[data-copy=status-link]")
    pw.expect(page.locator("[data-copy-status]").first).to_have_text("Link copied.")
    assert page.evaluate("navigator.clipboard.readText()") == link
    assert page.url.endswith(f"/support/{ticket}?token={token}")  # a reload never re-sends
    shot(page, "success")
    page.set_viewport_size({"width": 320, "height": 800})
    shot(page, "success-320")
    page.set_viewport_size({"width": 1280, "height": 900})

    page.click("[data-slot=status-href]")
    reply = page.locator(".msg-outbound.msg-agent")
    pw.expect(reply.first).to_be_visible(timeout=60_000)
    assert ticket in reply.first.inner_text()
    assert reply.first.locator(f'a[href="{link}"]').count() == 1  # its status link, linked
    customer = page.locator(".msg-inbound .msg-text").first.inner_text()
    assert customer == VALID["message"]
    pw.expect(page.locator("#waiting")).to_be_hidden()
    shot(page, "status")
    page.set_viewport_size({"width": 320, "height": 800})
    shot(page, "status-320")


def test_the_status_page_shows_a_new_reply_without_reloading(server: Server, page: Any) -> None:
    receipt = submit_by_api(server)
    deadline = time.monotonic() + 60
    while not any(m["direction"] == "outbound" for m in messages_of(server, receipt)):
        assert time.monotonic() < deadline, "the agent did not answer"
        time.sleep(0.3)
    page.goto(receipt["status_url"])
    page.evaluate("window.loadedOnce = true")
    assert page.locator(".msg-human").count() == 0

    answer = 'A person here: try <b>"Resend"</b> & see https://help.tasklane.io/reset?a=1&b=2.'
    response = httpx.post(
        f"{server.url}/api/v1/tickets/{receipt['ticket_id']}/reply",
        json={"text": answer, "operator": "Grace"},
        headers={"Authorization": f"Bearer {ADMIN}"},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    human = page.locator(".msg-human")
    pw.expect(human).to_have_count(1, timeout=30_000)  # found by polling
    assert human.locator(".msg-text").inner_text() == answer  # as text, never as markup
    assert human.locator("b").count() == 0
    link = human.locator(".msg-text a")
    assert link.get_attribute("href") == "https://help.tasklane.io/reset?a=1&b=2"
    assert link.get_attribute("rel") == "noopener noreferrer nofollow"
    assert page.locator(".msg-human .msg-author").inner_text() == "Support team"
    pw.expect(page.locator("#announcer")).to_have_text("New reply from Support team.")
    assert page.evaluate("window.loadedOnce") is True  # the same page, not a reload


def test_without_javascript_the_plain_form_post_works(server: Server, browser: Any) -> None:
    context = browser.new_context(
        java_script_enabled=False, viewport={"width": 1280, "height": 900}
    )
    page = context.new_page()
    try:
        page.goto(f"{server.url}/")
        fill_valid(page, name="   ")  # passes the browser's own checks, not the server's
        page.click("#submit")
        assert page.url == f"{server.url}/support"
        assert error_text(page, "name") == "Enter your name."
        assert page.locator("#name").get_attribute("aria-invalid") == "true"
        assert page.input_value("#email") == VALID["email"]  # kept
        assert page.input_value("#message") == VALID["message"]
        shot(page, "nojs-form-errors")

        page.fill("#name", VALID["name"])
        page.click("#submit")
        ticket = page.locator("[data-slot=ticket]").inner_text()
        assert re.fullmatch(r"TKT-\d{6}", ticket)
        assert f"/support/{ticket}?token=" in page.url
        shot(page, "nojs-success")

        page.click("[data-slot=status-href]")
        assert page.locator("h1").inner_text() == f"Ticket {ticket}"
        deadline = time.monotonic() + 60
        while page.locator(".msg-outbound").count() == 0:
            assert time.monotonic() < deadline, "no reply on the status page"
            time.sleep(0.5)
            page.click("#refresh")  # a plain link back to the same page
        assert page.locator(".msg-inbound .msg-text").inner_text() == VALID["message"]
        shot(page, "nojs-status")
    finally:
        context.close()


def test_a_failed_send_keeps_the_form_and_says_why(server: Server, page: Any) -> None:
    page.goto(f"{server.url}/")
    fill_valid(page)
    page.route("**/api/v1/support/form", lambda route: route.abort("internetdisconnected"))
    page.click("#submit")
    alert = page.locator("#form-alert")
    pw.expect(alert).to_contain_text("We could not reach the server")
    pw.expect(page.locator("#submit")).to_be_enabled()
    assert page.input_value("#message") == VALID["message"]  # nothing typed is lost

    # The server's own 400 answer (the client's checks were bypassed) is shown per field,
    # in the same words the page uses.
    bad = {**VALID, "category": "account", "email": "ada@example", "subject": "Hi"}
    answer = httpx.post(f"{server.url}/api/v1/support/form", json=bad, timeout=10)
    assert answer.status_code == 400
    page.unroute("**/api/v1/support/form")
    page.route(
        "**/api/v1/support/form",
        lambda route: route.fulfill(status=400, content_type="application/json", body=answer.text),
    )
    page.click("#submit")
    pw.expect(page.locator("#email-error")).to_have_text(
        "Enter an email address like name@example.com."
    )
    assert error_text(page, "subject") == "The subject must be at least 5 characters."
    assert page.locator("#subject").get_attribute("aria-invalid") == "true"
    assert page.evaluate("document.activeElement.id") == "error-summary"

    page.unroute("**/api/v1/support/form")  # the network is back: the same form goes through
    page.click("#submit")
    pw.expect(page.locator("#sent")).to_be_visible()


def test_keyboard_alone_fills_and_sends_the_form(server: Server, page: Any) -> None:
    page.goto(f"{server.url}/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip-link"
    page.keyboard.press("Enter")
    order = []
    for _ in range(8):
        page.keyboard.press("Tab")
        active = page.evaluate("document.activeElement.id")
        order.append(active)
        shown = "#priority-normal + label" if active.startswith("priority") else f"#{active}"
        outline = page.evaluate(f"getComputedStyle(document.querySelector('{shown}')).outlineStyle")
        assert outline == "solid", f"no visible focus on {active}"
    assert order == [
        "name", "email", "phone", "subject", "category", "priority-normal", "message", "submit"
    ]  # fmt: skip
    page.focus("#name")
    page.keyboard.type(VALID["name"])
    page.keyboard.press("Tab")
    page.keyboard.type(VALID["email"])
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    page.keyboard.type(VALID["subject"])
    page.keyboard.press("Tab")
    page.keyboard.type("Account")  # a select chooses by typing
    page.keyboard.press("Tab")
    page.keyboard.press("ArrowRight")  # radio group: normal -> high
    page.keyboard.press("Tab")
    page.keyboard.type(VALID["message"])
    assert page.locator("#category").input_value() == "account"
    assert page.locator("#priority-high").is_checked()
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    pw.expect(page.locator("#sent")).to_be_visible()
    assert re.fullmatch(r"TKT-\d{6}", page.locator("#sent [data-slot=ticket]").inner_text())


def test_pages_fit_a_320_pixel_screen(server: Server, browser: Any) -> None:
    receipt = submit_by_api(server)
    context = browser.new_context(viewport={"width": 320, "height": 640})
    page = context.new_page()
    try:
        pages = {
            "form-320": "/",
            "lookup-320": "/status",
            "status-page-320": receipt["status_url"],
            "notfound-320": "/no/such/page",
        }
        for name, path in pages.items():
            page.goto(path if path.startswith("http") else f"{server.url}{path}")
            if name == "form-320":
                page.click("#submit")  # with every error showing
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 320, f"{name} scrolls sideways ({width}px)"
            shot(page, name)
    finally:
        context.close()


def test_no_serious_accessibility_violations(server: Server, page: Any) -> None:
    receipt = submit_by_api(server)
    found: dict[str, list[str]] = {}
    page.goto(f"{server.url}/")
    found["form"] = serious_violations(page)
    page.click("#submit")
    found["form with errors"] = serious_violations(page)
    fill_valid(page)
    page.click("#submit")
    pw.expect(page.locator("#sent")).to_be_visible()
    found["success view"] = serious_violations(page)
    page.goto(receipt["status_url"])
    found["status"] = serious_violations(page)
    page.goto(f"{server.url}/status/{receipt['ticket_id']}?token=wrong")
    found["lookup after a wrong token"] = serious_violations(page)
    page.goto(f"{server.url}/no/such/page")
    found["not found"] = serious_violations(page)
    assert found == {key: [] for key in found}
