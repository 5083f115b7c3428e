"""The Litestar application: routes, error mapping (never a 500 for bad input), the
runtime's lifespan, request ids in logs, Prometheus metrics and the OpenAPI schema."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from litestar import Litestar, MediaType, Request, Response, get
from litestar.config.app import AppConfig
from litestar.datastructures import State
from litestar.enums import ScopeType
from litestar.exceptions import HTTPException
from litestar.exceptions import ValidationException as LitestarValidation
from litestar.openapi import OpenAPIConfig
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)

from fte_core.errors import (
    ConfigError,
    FteError,
    InProgress,
    InvalidTransition,
    NotFound,
    StorageError,
    ValidationError,
)
from service import admin, api, web, webhooks_gmail, webhooks_whatsapp
from service.forms import FormErrors
from service.monitor import Monitor, monitoring
from service.state import ServiceState

log = logging.getLogger("service.http")

StateFactory = Callable[[], AbstractAsyncContextManager[ServiceState]]


class Problem(Exception):
    """An error body in one shape for every endpoint."""


def _body(error: str, detail: str, fields: dict[str, str] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"error": error, "detail": detail}
    if fields:
        body["fields"] = fields
    return body


def _fte_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    if isinstance(exc, FormErrors):
        return Response(_body("validation", exc.detail, exc.fields), status_code=400)
    if isinstance(exc, ValidationError):
        return Response(_body("validation", exc.detail, {exc.field: exc.detail}), status_code=400)
    if isinstance(exc, NotFound):
        return Response(_body("not_found", str(exc)), status_code=404)
    if isinstance(exc, InvalidTransition):
        return Response(_body("conflict", str(exc)), status_code=409)
    if isinstance(exc, InProgress):
        return Response(_body("in_progress", str(exc)), status_code=409)
    if isinstance(exc, StorageError | ConfigError):
        log.error("storage unavailable: %s", exc)
        return Response(_body("unavailable", "the service is not available"), status_code=503)
    log.error("unexpected %s: %s", type(exc).__name__, exc)
    return Response(_body("error", "the request could not be completed"), status_code=500)


def _validation(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    assert isinstance(exc, LitestarValidation)
    fields: dict[str, str] = {}
    for item in exc.extra if isinstance(exc.extra, list) else []:
        if isinstance(item, dict):
            key = str(item.get("key") or "body").removeprefix("$.")
            fields[key] = str(item.get("message", "invalid"))
    detail = exc.detail if not fields else "; ".join(f"{k}: {v}" for k, v in fields.items())
    return Response(_body("validation", detail, fields or None), status_code=400)


def _http(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    assert isinstance(exc, HTTPException)
    names = {
        401: "unauthorized",
        403: "forbidden",
        404: "not_found",
        405: "method_not_allowed",
        413: "too_large",
        415: "unsupported_media_type",
        429: "too_many_requests",
    }
    status = exc.status_code
    if status == 404 and web.wants_html(request):
        return web.not_found_page()
    body = _body(names.get(status, "error" if status >= 500 else "bad_request"), exc.detail)
    return Response(body, status_code=status, headers=exc.headers)


def _media(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    assert isinstance(exc, api.UnsupportedMediaType)
    detail = f"send application/json or a form, not {exc.kind}"
    return Response(_body("unsupported_media_type", detail), status_code=415)


class Metrics:
    """The service's Prometheus registry (its own, so tests and several apps never clash)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "fte_http_requests",
            "HTTP requests",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "fte_http_request_seconds",
            "HTTP request latency",
            ["method", "route"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )


def request_middleware(metrics: Metrics) -> Callable[[ASGIApp], ASGIApp]:
    """A request id on every response and log line, and the request counted and timed."""

    def middleware(app: ASGIApp) -> ASGIApp:
        async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != ScopeType.HTTP:
                await app(scope, receive, send)
                return
            started = time.perf_counter()
            request_id = uuid.uuid4().hex[:16]
            status = 500

            async def send_with_id(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                    headers = list(message.get("headers", []))
                    headers.append((b"x-request-id", request_id.encode()))
                    message = {**message, "headers": headers}
                await send(message)

            try:
                await app(scope, receive, send_with_id)
            finally:
                route = scope.get("path_template") or _route_of(scope.get("path", ""))
                method = scope.get("method", "")
                seconds = time.perf_counter() - started
                metrics.requests.labels(method, route, str(status)).inc()
                metrics.latency.labels(method, route).observe(seconds)
                log.info(
                    "request",
                    extra={
                        "request_id": request_id,
                        "method": method,
                        "path": scope.get("path"),
                        "status": status,
                        "ms": round(seconds * 1000, 2),
                    },
                )

        return wrapped

    return middleware


def _route_of(path: str) -> str:
    """Bounded label values: ids in paths are replaced."""
    parts = ["{id}" if any(c.isdigit() for c in p) else p for p in path.split("/")]
    return "/".join(parts)[:80]


def create_app(
    state_factory: StateFactory,
    *,
    max_body_bytes: int = 1_048_576,
    extra_routes: Sequence[Any] = (),
    on_app_init: Sequence[Callable[[AppConfig], AppConfig]] = (),
) -> Litestar:
    """`state_factory` opens what the app serves (the runtime, the worker) for its lifespan."""
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with state_factory() as state:
            app.state.service = state
            runtime = state.runtime
            monitor = Monitor.for_settings(runtime.operations, runtime.settings)
            async with monitoring(monitor, metrics.registry):
                app.state.monitor = monitor  # the inbox's alert banners read it
                yield

    @get("/metrics", media_type=MediaType.TEXT, include_in_schema=False)
    async def prometheus() -> Response[bytes]:
        return Response(
            generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST.split(";")[0]
        )

    return Litestar(
        route_handlers=[
            api.CustomerController,
            api.OperatorController,
            api.health,
            api.ready,
            prometheus,
            *web.WEB_ROUTES,
            *admin.ADMIN_ROUTES,
            web.STATIC_ROUTER,
            *webhooks_whatsapp.ROUTES,
            webhooks_gmail.gmail_push,
            *extra_routes,
        ],
        template_config=web.TEMPLATE_CONFIG,
        lifespan=[lifespan],
        exception_handlers={
            FteError: _fte_error,
            LitestarValidation: _validation,
            HTTPException: _http,
            api.UnsupportedMediaType: _media,
        },
        middleware=[request_middleware(metrics)],
        request_max_body_size=max_body_bytes,
        openapi_config=OpenAPIConfig(
            title="Customer Success Digital FTE", version="1", path="/schema"
        ),
        state=State({"metrics": metrics}),
        logging_config=None,  # the process configures logging (service.logs), once
        on_app_init=list(on_app_init),
    )
