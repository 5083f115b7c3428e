"""The MCP server: the toolkit's six tools (fte_core.toolkit) over the official SDK.

The SDK's low-level server is used, not its decorator API, because the decorator derives
schemas from function signatures with pydantic; here each tool's input and output
schemas are the msgspec Structs the library itself decodes into, so what a client is
told and what the library accepts cannot drift apart. A bad argument, or any FteError
of the library, comes back as a tool error (`isError`) naming the field or the reason.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import msgspec
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp_types import (
    CallToolRequestParams,
    CallToolResult,
    ListToolsResult,
    PaginatedRequestParams,
    TextContent,
    Tool,
)

from fte_core.errors import FteError, ValidationError
from fte_core.models import Ticket
from fte_core.toolkit import (
    CreateTicketArgs,
    EscalateArgs,
    ExplainArgs,
    History,
    HistoryArgs,
    SearchArgs,
    SearchResult,
    SendResponseArgs,
    SendResult,
    TicketReceipt,
    Toolkit,
)
from fte_core.tools import Explanation

Call = Callable[[Toolkit, Any], Awaitable[msgspec.Struct]]


@dataclass(frozen=True, slots=True)
class ToolSpec:
    name: str
    description: str
    args: type[msgspec.Struct]
    result: type[msgspec.Struct]
    call: Call


TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
        "search_knowledge_base",
        "Search the product documentation; best passages first, none when nothing answers.",
        SearchArgs,
        SearchResult,
        lambda kit, a: kit.search_knowledge_base(a),
    ),
    ToolSpec(
        "create_ticket",
        "Take a customer's message in (as its channel would): stored, queued for the agent, "
        "which answers or hands over by the rules. Returns the ticket and its access token.",
        CreateTicketArgs,
        TicketReceipt,
        lambda kit, a: kit.create_ticket(a),
    ),
    ToolSpec(
        "get_customer_history",
        "The ticket's conversation and the customer's proven cross-channel history; needs "
        "the ticket's access token and never shows another customer's messages.",
        HistoryArgs,
        History,
        lambda kit, a: kit.get_customer_history(a),
    ),
    ToolSpec(
        "escalate_to_human",
        "Hand the ticket to a person with a reason code and urgency.",
        EscalateArgs,
        Ticket,
        lambda kit, a: kit.escalate_to_human(a),
    ),
    ToolSpec(
        "send_response",
        "Answer the ticket's latest customer message. The input rules (on that message) and "
        "the output rules (on the draft) run first: a blocked draft is not sent and the "
        "result says which rules and why.",
        SendResponseArgs,
        SendResult,
        lambda kit, a: kit.send_response(a),
    ),
    ToolSpec(
        "explain_decision",
        "Why a reply said what it said: the decision record in words and in full.",
        ExplainArgs,
        Explanation,
        lambda kit, a: kit.explain_decision(a),
    ),
)


def json_schema(struct: type[msgspec.Struct]) -> dict[str, Any]:
    """The Struct's JSON schema as one object (MCP wants `type: object` at the top),
    the types it refers to under `$defs`."""
    (ref,), components = msgspec.json.schema_components([struct], ref_template="#/$defs/{name}")
    name = str(ref["$ref"]).rsplit("/", 1)[1]
    schema = dict(components.pop(name))
    if components:
        schema["$defs"] = components
    return schema


def tool_listing() -> list[Tool]:
    return [
        Tool(
            name=spec.name,
            description=spec.description,
            input_schema=json_schema(spec.args),
            output_schema=json_schema(spec.result),
        )
        for spec in TOOLS
    ]


_AT = re.compile(r"^(?P<detail>.*) - at `\$\.(?P<field>[^`\[]+)")
_NAMED = re.compile(r"field `(?P<field>[^`]+)`")


def argument_error(exc: msgspec.ValidationError) -> ValidationError:
    """msgspec's message as the library's ValidationError, naming the field."""
    text = str(exc)
    at = _AT.match(text)
    if at is not None:
        return ValidationError(at["field"], at["detail"])
    named = _NAMED.search(text)
    return ValidationError(named["field"] if named else "arguments", text)


def build_server(toolkit: Toolkit, *, version: str = "") -> Server[Any]:
    specs = {spec.name: spec for spec in TOOLS}
    listing = tool_listing()

    async def list_tools(
        ctx: ServerRequestContext[Any], params: PaginatedRequestParams | None
    ) -> ListToolsResult:
        return ListToolsResult(tools=listing)

    async def call_tool(
        ctx: ServerRequestContext[Any], params: CallToolRequestParams
    ) -> CallToolResult:
        spec = specs.get(params.name)
        if spec is None:
            return _error(f"unknown tool {params.name!r}; the tools are {', '.join(specs)}")
        try:
            args = msgspec.convert(params.arguments or {}, spec.args)
            result = await spec.call(toolkit, args)
        except msgspec.ValidationError as exc:
            return _error(str(argument_error(exc)))
        except FteError as exc:
            return _error(f"{type(exc).__name__}: {exc}")
        return CallToolResult(
            content=[TextContent(type="text", text=msgspec.json.encode(result).decode())],
            structured_content=msgspec.to_builtins(result),
        )

    return Server(
        "fte",
        version=version,
        instructions="Customer Success Digital FTE: the support agent's tools. Ticket-scoped "
        "tools need the ticket's access token; replies pass the same rules as the agent's.",
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )


def _error(message: str) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=message)], is_error=True)
