"""The customers' web pages: the support form at `/`, the page after sending it, and the
ticket status page (with the ticket's access token, or a lookup form).

The pages work as plain HTML forms; the script in static/app.js adds checks before
sending, sending without leaving the page, and watching the status page for the reply.
Every page is rendered by the server so a browser without JavaScript gets the same."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import msgspec
from litestar import Controller, Request, get, post
from litestar.datastructures import CacheControlHeader, ResponseHeader
from litestar.params import FromPath, FromQuery
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect, Template
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig
from markupsafe import Markup, escape

from service.api import runtime_of
from service.forms import FIELDS, LIMITS, FormErrors, parse_form
from service.intake import TicketView, status_url, submit_form, ticket_view
from service.web_rules import (
    CATEGORY_LABELS,
    LABELS,
    PRIORITY_LABELS,
    friendly_errors,
    rules_json,
)

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
TEMPLATE_DIR = HERE / "templates"

# The customer's own words, the assistant's and a person's, as the page names them.
AUTHORS: Mapping[str, str] = {
    "customer": "You",
    "agent": "Support assistant",
    "human": "Support team",
}
STATUSES: Mapping[str, str] = {
    "open": "Open",
    "pending": "Answered",
    "escalated": "With our team",
    "resolved": "Resolved",
    "closed": "Closed",
}
# Statuses in which a new reply can still arrive, so the page keeps watching.
ACTIVE = ("open", "pending", "escalated")

_SECURITY_HEADERS = [
    ResponseHeader(
        name="Content-Security-Policy",
        value="default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
        " connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    ResponseHeader(name="Referrer-Policy", value="no-referrer"),  # status links hold tokens
    ResponseHeader(name="X-Content-Type-Options", value="nosniff"),
]
_PRIVATE = CacheControlHeader(no_store=True)  # pages that show an access token


def _fingerprint(name: str) -> str:
    return hashlib.sha256((STATIC_DIR / name).read_bytes()).hexdigest()[:10]


_VERSIONS = {name: _fingerprint(name) for name in ("app.css", "app.js", "favicon.svg")}


def static_url(name: str) -> str:
    """A file's URL with its content hash, so a changed file is never served from cache."""
    return f"/static/{name}?v={_VERSIONS.get(name, '')}"


_URL = re.compile(r"https?://[^\s<>\"']+")
_TRAILING = ".,;:!?)"


def linkify(text: str) -> Markup:
    """Message text escaped, with its http(s) addresses as links (replies cite help pages
    and the status link). static/app.js does the same for messages that arrive later."""
    parts: list[Markup] = []
    last = 0
    for match in _URL.finditer(text):
        url = match.group(0).rstrip(_TRAILING)
        parts.append(escape(text[last : match.start()]))
        parts.append(Markup('<a href="{0}" rel="noopener noreferrer nofollow">{0}</a>').format(url))
        last = match.start() + len(url)
    parts.append(escape(text[last:]))
    return Markup("").join(parts)


def _configure(engine: JinjaTemplateEngine) -> None:
    env = engine.engine
    env.globals.update(
        static=static_url,
        labels=LABELS,
        authors=AUTHORS,
        statuses=STATUSES,
        limits=LIMITS,
        category_labels=CATEGORY_LABELS,
        priority_labels=PRIORITY_LABELS,
    )
    env.filters["when"] = lambda moment: moment.strftime("%d %b %Y, %H:%M UTC")
    env.filters["quote"] = lambda text: quote(str(text), safe="")
    env.filters["linkify"] = linkify


TEMPLATE_CONFIG = TemplateConfig(
    directory=TEMPLATE_DIR, engine=JinjaTemplateEngine, engine_callback=_configure
)
STATIC_ROUTER = create_static_files_router(
    path="/static",
    directories=[STATIC_DIR],
    cache_control=CacheControlHeader(max_age=86400, public=True),
    include_in_schema=False,
)


def form_page(
    values: Mapping[str, str] | None = None,
    errors: Mapping[str, str] | None = None,
    *,
    status_code: int = 200,
) -> Template:
    return Template(
        "form.html",
        context={
            "values": dict(values or {"priority": "normal"}),
            "errors": dict(errors or {}),
            "rules_json": rules_json(),
        },
        status_code=status_code,
    )


def lookup_page(ticket: str = "", *, failed: bool = False) -> Template:
    """The same page for an unknown ticket and a wrong token: numbers are sequential, so
    saying which would let anyone probe for tickets."""
    return Template(
        "lookup.html",
        context={"ticket": ticket, "failed": failed},
        status_code=404 if failed else 200,
    )


def _text_fields(raw: Mapping[str, object]) -> dict[str, str]:
    return {key: value for key, value in raw.items() if key in FIELDS and isinstance(value, str)}


def status_context(view: TicketView, token: str) -> dict[str, Any]:
    """What the status page and its script start from."""
    messages = list(view.messages)
    answered = bool(messages) and messages[-1].direction == "outbound"
    return {
        "view": view,
        "token": token,
        "answered": answered,
        "active": view.status in ACTIVE,
        "api_url": f"/api/v1/tickets/{quote(view.ticket_id, safe='')}",
        "names_json": _json({"authors": AUTHORS, "statuses": STATUSES, "active": ACTIVE}),
    }


def _json(value: object) -> str:
    """For a <script type="application/json"> element: `<` escaped so no text can close it."""
    return msgspec.json.encode(value).decode().replace("<", "\\u003c")


class WebPages(Controller):
    """HTML for customers; the JSON API lives in service.api."""

    path = "/"
    include_in_schema = False
    response_headers = _SECURITY_HEADERS

    @get("/")
    async def form(self) -> Template:
        return form_page()

    @post("/support", status_code=303)
    async def send(self, request: Request[Any, Any, Any]) -> Template | Redirect:
        """The form posted without JavaScript: on success the page with the ticket number
        (303, so reloading it never sends the form twice), else the form again with each
        field's error next to it and what was typed kept."""
        submitted = await request.form()
        raw: dict[str, object] = {key: submitted.get(key) for key in submitted}
        try:
            form = parse_form(raw)
        except FormErrors as exc:
            return form_page(_text_fields(raw), friendly_errors(exc.fields), status_code=400)
        receipt = await submit_form(runtime_of(request), form)
        ticket = quote(receipt.ticket_id, safe="")
        return Redirect(
            f"/support/{ticket}?token={quote(receipt.access_token, safe='')}", status_code=303
        )

    @get("/support/{ticket_id:str}", cache_control=_PRIVATE)
    async def sent(
        self, request: Request[Any, Any, Any], ticket_id: FromPath[str], token: FromQuery[str] = ""
    ) -> Template:
        """The success view: the ticket number and its status link (which holds the token)."""
        runtime = runtime_of(request)
        view = await ticket_view(runtime, ticket_id, token) if token else None
        if view is None:
            return lookup_page(ticket_id, failed=bool(token))
        return Template(
            "sent.html",
            context={
                "ticket": view.ticket_id,
                "token": token,
                "status_url": status_url(runtime, view.ticket_id),
            },
        )

    @get("/status", cache_control=_PRIVATE)
    async def lookup(
        self, ticket: FromQuery[str] = "", token: FromQuery[str] = ""
    ) -> Template | Redirect:
        """The lookup form; filled in (it is a GET form) it leads to the status page."""
        ticket, token = ticket.strip().upper(), token.strip()
        if ticket and token:
            return Redirect(
                f"/status/{quote(ticket, safe='')}?token={quote(token, safe='')}",
                status_code=303,
            )
        return lookup_page(ticket)

    @get("/status/{ticket_id:str}", cache_control=_PRIVATE)
    async def status(
        self, request: Request[Any, Any, Any], ticket_id: FromPath[str], token: FromQuery[str] = ""
    ) -> Template:
        view = await ticket_view(runtime_of(request), ticket_id, token) if token else None
        if view is None:
            return lookup_page(ticket_id, failed=bool(token))
        return Template("status.html", context=status_context(view, token))


def wants_html(request: Request[Any, Any, Any]) -> bool:
    """A browser asking for a page (not the API, not a script asking for JSON)."""
    path = request.url.path
    if path.startswith("/api/") or path in ("/metrics", "/schema") or path.startswith("/schema/"):
        return False
    return "text/html" in request.headers.get("accept", "")


def not_found_page() -> Template:
    headers = {h.name: h.value for h in _SECURITY_HEADERS if h.value is not None}
    return Template("404.html", status_code=404, headers=headers)


WEB_ROUTES: list[Any] = [WebPages]
