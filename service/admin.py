"""The operators' hand-over inbox at `/admin`: sign in with the admin token, the queue of
tickets people own, a ticket's whole conversation with each decision explained, reply /
release / resolve / note, the alerts, and the stored reports.

Server-rendered forms, no script needed. Every POST carries the session's CSRF token and
must come from this site (Origin); the session cookie is HttpOnly, SameSite=Strict, scoped
to /admin, and Secure when the service is reached over HTTPS."""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import quote, urlsplit

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import CacheControlHeader, Cookie, ResponseHeader
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from fte_core import operators
from fte_core.clock import utc_now
from fte_core.errors import DeliveryError, InvalidTransition, NotFound, ValidationError
from fte_core.ports import ReportKind
from service import admin_session as sessions
from service.admin_session import Session
from service.admin_views import AGES, CHANNELS, TEAMS, URGENCIES, QueueFilter, queue, ticket_page
from service.api import runtime_of
from service.monitor import Monitor
from service.state import ServiceState
from service.web import STATIC_DIR

REPORT_KINDS: dict[ReportKind, str] = {
    "digest": "Daily digest",
    "learning": "Learning report",
    "shadow": "Shadow evaluation of a rule change",
}
ACTIONS = ("reply", "release", "resolve", "note")
DONE = {
    "reply": "Reply sent to the customer.",
    "release": "Released: the agent answers this customer again.",
    "resolve": "Resolved.",
    "note": "Note added.",
}
_HEADERS = [
    ResponseHeader(
        name="Content-Security-Policy",
        value="default-src 'self'; script-src 'none'; style-src 'self'; img-src 'self' data:;"
        " form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    # same-origin, not no-referrer: with no-referrer browsers send `Origin: null` on form
    # posts, and the posts are checked to come from this site (no tokens are in these URLs)
    ResponseHeader(name="Referrer-Policy", value="same-origin"),
    ResponseHeader(name="X-Content-Type-Options", value="nosniff"),
]
# A stored report's page: our own HTML with inline styles and SVG, never a script.
_REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox"
_CSS_VERSION = hashlib.sha256((STATIC_DIR / "admin.css").read_bytes()).hexdigest()[:10]


class SignInRequired(Exception):
    """No valid session: the page sends the operator to sign in."""


class Forbidden(Exception):
    """A form without this session's CSRF token, or posted from another site."""


def _key(request: Request[Any, Any, Any]) -> bytes:
    state: ServiceState = request.app.state.service
    return sessions.session_key(state.runtime.token_secret, state.admin_token)


def _session(request: Request[Any, Any, Any]) -> Session:
    found = sessions.read(_key(request), request.cookies.get(sessions.COOKIE), utc_now())
    if found is None:
        raise SignInRequired
    return found


def _secure(request: Request[Any, Any, Any]) -> bool:
    """Secure when customers reach us over HTTPS (FTE_PUBLIC_BASE_URL), or this request
    came over it (directly, or through a proxy saying so). Marking a cookie Secure can
    only narrow where it goes, so trusting the proxy header here is safe."""
    base = runtime_of(request).settings.base_url
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return base.startswith("https://") or request.url.scheme == "https" or forwarded == "https"


def _same_origin(request: Request[Any, Any, Any]) -> bool:
    origin = request.headers.get("origin")
    if not origin or origin == "null":
        return origin is None  # an opaque origin ("null") is never ours
    host = urlsplit(origin).netloc
    ours = {request.headers.get("host", ""), urlsplit(runtime_of(request).settings.base_url).netloc}
    return host in ours


async def _form(request: Request[Any, Any, Any]) -> dict[str, str]:
    submitted = await request.form()
    return {key: value for key, value in submitted.items() if isinstance(value, str)}


async def _checked_form(request: Request[Any, Any, Any], session: Session) -> dict[str, str]:
    form = await _form(request)
    token = form.get("csrf", "")
    if not _same_origin(request) or not sessions.csrf_matches(_key(request), session, token):
        raise Forbidden
    return form


def _cookie(value: str, request: Request[Any, Any, Any], *, max_age: int) -> Cookie:
    return Cookie(
        key=sessions.COOKIE,
        value=value,
        path=sessions.COOKIE_PATH,
        max_age=max_age,
        httponly=True,
        secure=_secure(request),
        samesite="strict",
    )


def page(
    template: str, request: Request[Any, Any, Any], status_code: int = 200, **context: Any
) -> Template:
    """An inbox page: the session's CSRF token and the alert banners go on every one."""
    session = context.get("session")
    if isinstance(session, Session):
        context["csrf"] = sessions.csrf_token(_key(request), session)
        monitor: Monitor | None = getattr(request.app.state, "monitor", None)
        context["alerts"] = monitor.alerts if monitor is not None else []
    context.update(
        admin_css=f"/static/admin.css?v={_CSS_VERSION}",
        channel_names=CHANNELS,
        teams=TEAMS,
        urgencies=URGENCIES,
        ages=AGES,
    )
    return Template(f"admin/{template}.html", context=context, status_code=status_code)


def _signed_out(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    return Redirect("/admin/login", status_code=303)


def _forbidden(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    return page("forbidden", request, status_code=403)


def _missing(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    return page("missing", request, status_code=404, session=_maybe_session(request))


def _maybe_session(request: Request[Any, Any, Any]) -> Session | None:
    return sessions.read(_key(request), request.cookies.get(sessions.COOKIE), utc_now())


class AdminPages(Controller):
    path = "/admin"
    include_in_schema = False
    response_headers = _HEADERS
    cache_control = CacheControlHeader(no_store=True)
    exception_handlers = {  # noqa: RUF012 - Litestar reads it as a class attribute
        SignInRequired: _signed_out,
        Forbidden: _forbidden,
        NotFound: _missing,
    }

    @get("/login")
    async def login_page(self, request: Request[Any, Any, Any]) -> Template | Redirect:
        if _maybe_session(request) is not None:
            return Redirect("/admin", status_code=303)
        return page("login", request)

    @post("/login", status_code=303)
    async def sign_in(self, request: Request[Any, Any, Any]) -> Template | Redirect:
        """Wrong or missing token: the same page again, 401, saying which field."""
        if not _same_origin(request):
            raise Forbidden
        form = await _form(request)
        name = sessions.clean_name(form.get("name", ""))
        state: ServiceState = request.app.state.service
        errors: dict[str, str] = {}
        if not name:
            errors["name"] = "Enter your name: your replies and notes are signed with it."
        if not sessions.token_matches(form.get("token", ""), state.admin_token):
            errors["token"] = "That is not the admin token."
        if errors:
            return page("login", request, status_code=401, errors=errors, name=name)
        value = sessions.issue(_key(request), name, utc_now())
        cookie = _cookie(value, request, max_age=int(sessions.LIFETIME.total_seconds()))
        return Redirect("/admin", status_code=303, cookies=[cookie])

    @post("/logout", status_code=303)
    async def sign_out(self, request: Request[Any, Any, Any]) -> Redirect:
        await _checked_form(request, _session(request))
        return Redirect("/admin/login", status_code=303, cookies=[_cookie("", request, max_age=0)])

    @get("/")
    async def inbox(
        self,
        request: Request[Any, Any, Any],
        team: FromQuery[str] = "",
        urgency: FromQuery[str] = "",
        channel: FromQuery[str] = "",
        age: FromQuery[str] = "",
    ) -> Template:
        session = _session(request)
        chosen = QueueFilter.of(team, urgency, channel, age)
        rows = await queue(runtime_of(request), chosen, utc_now())
        return page("inbox", request, session=session, rows=rows, chosen=chosen)

    @get("/tickets/{number:str}")
    async def ticket(
        self, request: Request[Any, Any, Any], number: FromPath[str], done: FromQuery[str] = ""
    ) -> Template:
        session = _session(request)
        return await self._ticket(request, session, number, done=DONE.get(done, ""))

    async def _ticket(
        self,
        request: Request[Any, Any, Any],
        session: Session,
        number: str,
        *,
        done: str = "",
        error: str = "",
        field: str = "",
        draft: str = "",
        status_code: int = 200,
    ) -> Template:
        runtime = runtime_of(request)
        found = await runtime.store.get_ticket(number)
        if found is None:
            raise NotFound(f"ticket {number!r}")
        view = await ticket_page(runtime, found)
        return page(
            "ticket",
            request,
            status_code=status_code,
            session=session,
            view=view,
            done=done,
            error=error,
            error_field=field,
            draft=draft,
        )

    @post("/tickets/{number:str}/{action:str}", status_code=303)
    async def act(
        self, request: Request[Any, Any, Any], number: FromPath[str], action: FromPath[str]
    ) -> Template | Redirect:
        """reply, release, resolve or note; then back to the ticket (303: a reload never
        repeats it). A refused action shows the ticket again with why, text kept."""
        session = _session(request)
        form = await _checked_form(request, session)
        if action not in ACTIONS:
            raise NotFound(f"action {action!r}")
        text = form.get("text", "")
        try:
            await self._do(request, session, number, action, text)
        except (ValidationError, InvalidTransition, DeliveryError) as exc:
            field = exc.field if isinstance(exc, ValidationError) else ""
            message = exc.detail if isinstance(exc, ValidationError) else str(exc)
            status = 400 if isinstance(exc, ValidationError) else 409
            if isinstance(exc, DeliveryError):
                message = f"The reply is stored but could not be delivered yet: {exc}"
                status = 502
            return await self._ticket(
                request,
                session,
                number,
                error=message,
                field=f"{action}-{field}" if field else "",
                draft=text if action != "release" else "",
                status_code=status,
            )
        where = f"/admin/tickets/{quote(number, safe='')}?done={action}"
        return Redirect(where, status_code=303)

    async def _do(
        self, request: Request[Any, Any, Any], session: Session, number: str, action: str, text: str
    ) -> None:
        runtime = runtime_of(request)
        store = runtime.store
        if action == "reply":
            await operators.reply_as_human(
                store, number, text, session.name, sender=runtime.agent.sender
            )
        elif action == "release":
            await operators.release(store, number, session.name)
        elif action == "resolve":
            await operators.resolve(store, number, session.name)
        else:
            await runtime.notes.add_note(number, session.name, text)

    @get("/reports")
    async def reports(self, request: Request[Any, Any, Any]) -> Template:
        session = _session(request)
        store = runtime_of(request).reports
        kinds = [
            (kind, label, await store.reports(kind, limit=10))
            for kind, label in REPORT_KINDS.items()
        ]
        return page("reports", request, session=session, kinds=kinds)

    @get("/reports/{kind:str}/{report_id:int}")
    async def report(
        self, request: Request[Any, Any, Any], kind: FromPath[str], report_id: FromPath[int]
    ) -> Response[str]:
        """A stored report's own page, as its generator wrote it, sandboxed."""
        _session(request)
        if kind not in REPORT_KINDS:
            raise NotFound(f"report kind {kind!r}")
        found = await runtime_of(request).reports.reports(kind, limit=500)
        match = next((r for r in found if r.id == report_id), None)
        if match is None:
            raise NotFound(f"report {report_id}")
        return Response(
            match.html,
            media_type="text/html",
            headers={"Content-Security-Policy": _REPORT_CSP},
        )


ADMIN_ROUTES: list[Any] = [AdminPages]
