"""The MCP server on both transports: `fte mcp` (stdio, for a local MCP client such as a
desktop assistant) and streamable HTTP mounted in the service at /mcp behind the
operators' bearer token.

Over HTTP the SDK runs stateless, answering with JSON: any API replica can take any
request, so it works behind a plain load balancer with several pods.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from importlib import metadata
from typing import TYPE_CHECKING, Any, cast

from litestar import Litestar
from litestar.config.app import AppConfig
from litestar.handlers import asgi
from litestar.handlers.asgi_handlers import ASGIRouteHandler
from litestar.types import Receive, Scope, Send

from fte_core.errors import FteError
from fte_core.toolkit import Toolkit
from service import runner
from service.api import admin_guard
from service.bootstrap import Runtime, bootstrap
from service.settings import load_settings
from service.state import ServiceState

if TYPE_CHECKING:
    from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

MCP_PATH = "/mcp"


def _version() -> str:
    try:
        return metadata.version("fte")
    except metadata.PackageNotFoundError:
        return ""


def toolkit_for(runtime: Runtime) -> Toolkit:
    return Toolkit(runtime.agent, runtime.token_secret)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "mcp",
        help="serve the agent's tools to an MCP client over stdio",
        description="The MCP server on stdin/stdout (logs go to stderr): search_knowledge_base, "
        "create_ticket, get_customer_history, escalate_to_human, send_response, "
        "explain_decision, over the same storage as the service. The service also serves "
        f"them over streamable HTTP at {MCP_PATH} (admin token required).",
    )
    parser.set_defaults(handler=mcp_command)


def mcp_command(args: argparse.Namespace) -> int:
    try:
        runner.run(_serve_stdio())
    except FteError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


async def _serve_stdio() -> None:
    # the SDK is imported when used: every other `fte` command starts without it
    from mcp.server.stdio import stdio_server

    from adapters.mcp.server import build_server

    runtime = await bootstrap(load_settings())
    try:
        server = build_server(toolkit_for(runtime), version=_version())
        async with stdio_server() as (read, write):
            await server.run(read, write, server.create_initialization_options())
    finally:
        await runtime.aclose()


@asgi(MCP_PATH, is_mount=True, guards=[admin_guard], include_in_schema=False)
async def mcp_endpoint(scope: Scope, receive: Receive, send: Send) -> None:
    """Streamable HTTP, for operators' MCP clients (Authorization: Bearer <admin token>)."""
    manager: StreamableHTTPSessionManager = scope["litestar_app"].state.mcp
    # litestar and starlette type the same ASGI callables differently
    await manager.handle_request(cast(Any, scope), cast(Any, receive), cast(Any, send))


def _with_mcp(config: AppConfig) -> AppConfig:
    """The MCP session manager runs beside the runtime (after it has started)."""

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

        from adapters.mcp.server import build_server

        state: ServiceState = app.state.service
        server = build_server(toolkit_for(state.runtime), version=_version())
        manager = StreamableHTTPSessionManager(app=server, stateless=True, json_response=True)
        async with manager.run():
            app.state.mcp = manager
            yield

    config.lifespan = [*config.lifespan, lifespan]
    return config


def http_mount() -> tuple[ASGIRouteHandler, Callable[[AppConfig], AppConfig]]:
    """What `create_app` needs to serve MCP: the route and the app hook that starts it."""
    return mcp_endpoint, _with_mcp
