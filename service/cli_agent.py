"""`fte ask` and `fte eval`: one message, or the sample tickets, through the whole agent."""

from __future__ import annotations

import argparse
import secrets
import sys
import uuid
from datetime import UTC, datetime

import msgspec

from fte_core.errors import FteError, ValidationError
from fte_core.models import Channel, InboundMessage, Outcome, Verification
from service import runner
from service.bootstrap import EVAL_SCOPE, bootstrap
from service.evaluation import (
    EvalReport,
    SampleTicket,
    evaluate_tickets,
    load_tickets,
    render_report,
)
from service.settings import Settings, load_settings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ask = sub.add_parser(
        "ask",
        help="run one message through the agent and print the reply",
        description="Run one customer message through the whole agent, stored in the CRM "
        "(the same data directory or database as the service). The sender counts as "
        "proven: you, the operator, typed it.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    ask.add_argument("text", help="the customer's message")
    ask.add_argument("--channel", choices=[c.value for c in Channel], default="web_form")
    ask.add_argument(
        "--from",
        dest="sender",
        help="email address (phone for whatsapp); without it each call is a new anonymous "
        "sender, so separate calls never share a customer",
    )
    ask.add_argument("--name", help="the sender's display name")
    ask.add_argument("--subject", help="the email subject")
    ask.add_argument("--json", action="store_true", help="print a JSON result")
    ask.set_defaults(handler=ask_command)
    ev = sub.add_parser(
        "eval",
        help="run the sample tickets and print precision/recall",
        description="Run sample tickets through the agent in an isolated scope (its own "
        "PostgreSQL schema, emptied first), so they never mix with real conversations.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    ev.add_argument("--tickets", default=None, help="default: <context>/sample-tickets.json")
    ev.add_argument("--json", action="store_true", help="print a JSON report")
    ev.set_defaults(handler=eval_command)


class AskResult(msgspec.Struct, frozen=True, kw_only=True):
    customer_id: str
    conversation_id: str
    ticket_id: str
    action: str
    reasons: tuple[str, ...]
    rule_ids: tuple[str, ...]
    reply: tuple[str, ...]  # empty when held for a person with no acknowledgement due


def ask_message(args: argparse.Namespace) -> InboundMessage:
    if not args.text.strip():
        raise ValidationError("text", "the message must not be empty")
    channel = Channel(args.channel)
    is_phone = channel == Channel.WHATSAPP
    sender = args.sender or anonymous_sender(is_phone)
    return InboundMessage(
        channel=channel,
        provider_message_id=f"cli-{uuid.uuid4()}",
        text=args.text,
        received_at=datetime.now(UTC),
        sender_email=None if is_phone else sender,
        sender_phone=sender if is_phone else None,
        sender_name=args.name,
        subject=args.subject,
        verified_by=Verification.OPERATOR,
    )


def anonymous_sender(phone: bool) -> str:
    """A fresh address per call (reserved ranges: .invalid, +1 555 01xx-style numbers)."""
    token = secrets.token_hex(6)
    if phone:
        return "+1555" + str(int(token, 16) % 10**7).zfill(7)
    return f"anonymous-{token}@cli.invalid"


def ask_result(outcome: Outcome) -> AskResult:
    record = outcome.record
    rule_ids = record.input_decision.rule_ids + (
        record.output_decision.rule_ids if record.output_decision else ()
    )
    return AskResult(
        customer_id=outcome.customer.id,
        conversation_id=outcome.conversation.id,
        ticket_id=outcome.ticket.number,
        action=record.action,
        reasons=record.reasons,
        rule_ids=rule_ids,
        reply=outcome.reply.parts,
    )


async def _ask(settings: Settings, message: InboundMessage) -> Outcome:
    runtime = await bootstrap(settings)
    try:
        return await runtime.agent.handle(message)
    finally:
        await runtime.aclose()


def ask_command(args: argparse.Namespace) -> int:
    try:
        message = ask_message(args)
        outcome = runner.run(_ask(load_settings(), message))
    except FteError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    result = ask_result(outcome)
    if args.json:
        print(msgspec.json.encode(result).decode())
    else:
        print(
            f"[{result.ticket_id}] {result.action}"
            + (f" ({', '.join(result.reasons)})" if result.reasons else "")
        )
        print("\n---\n".join(result.reply))
    return 0


def eval_command(args: argparse.Namespace) -> int:
    settings = load_settings()
    path = args.tickets or f"{settings.context_dir}/sample-tickets.json"
    try:
        tickets = load_tickets(path)
        report = runner.run(_eval(settings, tickets))
    except FteError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(msgspec.json.encode(report).decode())
    else:
        print(render_report(report))
    return 0


async def _eval(settings: Settings, tickets: list[SampleTicket]) -> EvalReport:
    runtime = await bootstrap(settings, scope=EVAL_SCOPE)
    try:
        return await evaluate_tickets(runtime.agent, tickets)
    finally:
        await runtime.aclose()
