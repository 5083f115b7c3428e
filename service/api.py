"""The JSON API (SPEC 8): customers' form and ticket status, operators' queue and
actions, health and readiness. Handlers are thin: the work is in fte_core and intake."""

from __future__ import annotations

import hmac
from datetime import datetime, timedelta
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler
from litestar.params import FromPath, FromQuery, HeaderParameter, JSONBody, QueryParameter

from fte_core import operators
from fte_core.errors import NotFound, ValidationError
from fte_core.identity import normalize_email, normalize_phone
from fte_core.models import (
    Conversation,
    Customer,
    DecisionRecord,
    Identifier,
    IdentifierKind,
    Owner,
    StoredMessage,
    Ticket,
    TicketStatus,
)
from service.bootstrap import Runtime
from service.forms import parse_form
from service.intake import FormReceipt, TicketView, submit_form, ticket_view
from service.reports import ChannelReport, channel_report
from service.state import Readiness, ServiceState

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def runtime_of(request: Request[Any, Any, Any]) -> Runtime:
    state: ServiceState = request.app.state.service
    return state.runtime


def admin_guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """Bearer FTE_ADMIN_TOKEN, compared in constant time; 401 otherwise."""
    state: ServiceState = connection.app.state.service
    header = connection.headers.get("authorization", "")
    scheme, _, presented = header.partition(" ")
    expected = state.admin_token.encode("utf-8")
    given = presented.strip().encode("utf-8")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given, expected):
        raise NotAuthorizedException("an operator's bearer token is required")


async def _raw_form(request: Request[Any, Any, Any]) -> dict[str, object]:
    kind = request.content_type[0]
    if kind == "application/json":
        body = await request.body()
        try:
            raw = msgspec.json.decode(body)
        except msgspec.DecodeError as exc:
            raise ValidationError("body", f"malformed JSON: {exc}") from exc
        if not isinstance(raw, dict):
            raise ValidationError("body", "expected a JSON object")
        return raw
    if kind in FORM_TYPES:
        form = await request.form()
        return {key: form.get(key) for key in form}
    raise UnsupportedMediaType(kind or "none")


class UnsupportedMediaType(Exception):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        super().__init__(kind)


class CustomerController(Controller):
    path = "/api/v1"
    tags = ("customers",)

    @post("/support/form", status_code=201)
    async def support_form(self, request: Request[Any, Any, Any]) -> FormReceipt:
        """The web support form (JSON or form-encoded); queued, answered by a worker."""
        form = parse_form(await _raw_form(request))
        return await submit_form(runtime_of(request), form)

    @get("/tickets/{ticket_id:str}")
    async def ticket(
        self,
        request: Request[Any, Any, Any],
        ticket_id: FromPath[str],
        token: FromQuery[str | None] = None,
        header_token: Annotated[str | None, HeaderParameter(name="X-Ticket-Token")] = None,
    ) -> TicketView:
        """A ticket and its conversation for the holder of its access token."""
        given = token or header_token or ""
        view = await ticket_view(runtime_of(request), ticket_id, given)
        if view is None:
            raise NotFound("no ticket with that number and token")
        return view


class HumanReply(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    text: str
    operator: str


class OperatorAction(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    operator: str


class MessageOut(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    direction: str
    author: str
    author_name: str | None
    channel: str
    text: str
    created_at: datetime
    delivery_status: str
    record: DecisionRecord | None


def message_out(m: StoredMessage) -> MessageOut:
    return MessageOut(
        id=m.id,
        direction=m.direction.value,
        author=m.author.value,
        author_name=m.author_name,
        channel=m.channel.value,
        text=m.text,
        created_at=m.created_at,
        delivery_status=m.delivery_status.value,
        record=m.record,
    )


class ConversationOut(msgspec.Struct, frozen=True, kw_only=True):
    conversation: Conversation
    ticket: Ticket | None
    customer: Customer | None
    messages: tuple[MessageOut, ...]


class CustomerOut(msgspec.Struct, frozen=True, kw_only=True):
    customer: Customer
    tickets: tuple[Ticket, ...]


class OperatorController(Controller):
    path = "/api/v1"
    guards = (admin_guard,)
    tags = ("operators",)

    @get("/conversations/{conversation_id:str}")
    async def conversation(
        self, request: Request[Any, Any, Any], conversation_id: FromPath[str]
    ) -> ConversationOut:
        """The whole cross-channel conversation, with each reply's decision record."""
        store = runtime_of(request).store
        conversation = await store.get_conversation(conversation_id)
        if conversation is None:
            raise NotFound(f"conversation {conversation_id!r}")
        messages = await store.conversation_messages(conversation.id)
        return ConversationOut(
            conversation=conversation,
            ticket=await store.get_ticket(conversation.ticket_number),
            customer=await store.get_customer(conversation.customer_id),
            messages=tuple(message_out(m) for m in messages),
        )

    @get("/customers/lookup")
    async def lookup(
        self,
        request: Request[Any, Any, Any],
        email: FromQuery[str | None] = None,
        phone: FromQuery[str | None] = None,
    ) -> CustomerOut:
        """A customer by email or phone, with their tickets."""
        if not email and not phone:
            raise ValidationError("email", "give an email or a phone")
        store = runtime_of(request).store
        identifier = (
            Identifier(IdentifierKind.EMAIL, normalize_email(email))
            if email
            else Identifier(IdentifierKind.PHONE, normalize_phone(phone or ""))
        )
        customer = await store.find_customer(identifier)
        if customer is None:
            raise NotFound("no customer with that address")
        tickets = [t for t in await store.tickets(limit=500) if t.customer_id == customer.id]
        return CustomerOut(customer=customer, tickets=tuple(tickets))

    @get("/tickets")
    async def queue(
        self,
        request: Request[Any, Any, Any],
        status: FromQuery[TicketStatus | None] = None,
        reason: FromQuery[str | None] = None,
        team: FromQuery[str | None] = None,
        owner: FromQuery[Owner | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 100,
    ) -> list[Ticket]:
        """The hand-over queue: most urgent first, then oldest; `team` filters by the team
        the reason goes to (billing, security, support)."""
        tickets = await runtime_of(request).store.tickets(
            owner=owner, status=status, reason=reason, limit=limit
        )
        if team is not None:
            tickets = [t for t in tickets if team_of(t.escalation_reason) == team]
        return tickets

    @post("/tickets/{ticket_id:str}/reply", status_code=201)
    async def reply(
        self, request: Request[Any, Any, Any], ticket_id: FromPath[str], data: JSONBody[HumanReply]
    ) -> MessageOut:
        """A person's reply, stored under their name and delivered on the customer's
        channel (queued for delivery when no sender is configured)."""
        runtime = runtime_of(request)
        stored = await operators.reply_as_human(
            runtime.store,
            ticket_id,
            data.text,
            data.operator,
            sender=runtime.agent.sender,
            queue=runtime.agent.config.queue_replies,
        )
        return message_out(stored)

    @post("/tickets/{ticket_id:str}/release", status_code=200)
    async def release(
        self,
        request: Request[Any, Any, Any],
        ticket_id: FromPath[str],
        data: JSONBody[OperatorAction],
    ) -> Ticket:
        """Back to the agent: it answers the customer's next message."""
        return await operators.release(runtime_of(request).store, ticket_id, data.operator)

    @post("/tickets/{ticket_id:str}/resolve", status_code=200)
    async def resolve(
        self,
        request: Request[Any, Any, Any],
        ticket_id: FromPath[str],
        data: JSONBody[OperatorAction],
    ) -> Ticket:
        return await operators.resolve(runtime_of(request).store, ticket_id, data.operator)

    @get("/metrics/channels")
    async def channel_metrics(
        self,
        request: Request[Any, Any, Any],
        hours: Annotated[float, QueryParameter(gt=0, le=24 * 366)] = 24.0,
    ) -> ChannelReport:
        """Per channel over the last `hours`: volume, conversations, escalations per
        reason, reply latency p50/p95, sentiment, tokens and cost."""
        return await channel_report(runtime_of(request), timedelta(hours=hours))


_TEAMS = {"pricing": "billing", "refund": "billing", "account_security": "security"}


def team_of(reason: str | None) -> str:
    return _TEAMS.get(reason or "", "support")


class Health(msgspec.Struct, frozen=True, kw_only=True):
    status: str


@get("/api/v1/health", tags=["operations"])
async def health() -> Health:
    """Liveness: the process answers."""
    return Health(status="ok")


@get("/api/v1/ready", tags=["operations"])
async def ready(request: Request[Any, Any, Any]) -> Response[Readiness]:
    """503 until the database, migrations and the knowledge base are ready."""
    state: ServiceState = request.app.state.service
    report = await state.readiness()
    return Response(report, status_code=200 if report.ready else 503)
