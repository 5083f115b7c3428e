"""The honest resolution rate's rules on hand-built conversations (fte_core.resolution),
the digest schedule's arithmetic, the charts' markup and the learning report's titles."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from fte_core.learning import group, suggest_title
from fte_core.models import (
    Author,
    Channel,
    Decision,
    DecisionRecord,
    DeliveryStatus,
    Direction,
    StoredMessage,
)
from fte_core.ports import CustomerMessage
from fte_core.resolution import Outcome, figures, is_confirmation, outcomes
from service import charts
from service.digest_job import due_day, next_run

T0 = datetime(2026, 11, 20, 9, tzinfo=UTC)
_ids = iter(range(1_000_000))


def _inbound(
    customer: str, conversation: str, at: datetime, text: str, channel: Channel
) -> CustomerMessage:
    return CustomerMessage(
        customer_id=customer,
        message=StoredMessage(
            id=f"in-{next(_ids)}",
            conversation_id=conversation,
            channel=channel,
            direction=Direction.INBOUND,
            provider_message_id="p",
            text=text,
            created_at=at,
            delivery_status=DeliveryStatus.RECEIVED,
        ),
    )


def _reply(question: CustomerMessage, action: str = "answer") -> CustomerMessage:
    q = question.message
    record = DecisionRecord(
        message_id=q.id,
        channel=q.channel,
        ruleset_version="v",
        input_decision=Decision(stage="input", action="allow"),
        sentiment=0.5,
        action=action,
    )
    return CustomerMessage(
        customer_id=question.customer_id,
        message=StoredMessage(
            id=f"out-{next(_ids)}",
            conversation_id=q.conversation_id,
            channel=q.channel,
            direction=Direction.OUTBOUND,
            provider_message_id=None,
            text="an answer",
            created_at=q.created_at + timedelta(seconds=3),
            delivery_status=DeliveryStatus.SENT,
            record=record,
            author=Author.AGENT,
        ),
    )


def _answered(customer: str = "c1", channel: Channel = Channel.WEB_FORM) -> list[CustomerMessage]:
    question = _inbound(customer, f"conv-{customer}", T0, "How do I export to CSV?", channel)
    return [question, _reply(question)]


def _judge(messages: list[CustomerMessage], now: datetime) -> Outcome:
    found = outcomes(messages, T0.replace(hour=0), T0.replace(hour=0) + timedelta(days=1), now)
    assert len(found) == 1
    return found[0].outcome


LATER = T0 + timedelta(days=10)


@pytest.mark.parametrize(("hours", "expected"), [(71, Outcome.RECONTACTED), (73, Outcome.QUIET)])
def test_a_recontact_on_another_channel_counts_only_within_72_hours(
    hours: float, expected: Outcome
) -> None:
    messages = _answered()
    back = _inbound(
        "c1", "conv-other", T0 + timedelta(hours=hours), "it still fails", Channel.WHATSAPP
    )
    assert _judge([*messages, back], LATER) is expected


def test_a_confirmation_resolves_and_its_own_handover_does_not_count() -> None:
    messages = _answered()
    thanks = _inbound(
        "c1", "conv-c1", T0 + timedelta(hours=1), "Thanks, that worked!", Channel.WEB_FORM
    )
    # the agent could not answer "thanks" and handed it over: still a confirmed answer
    found = outcomes(
        [*messages, thanks, _reply(thanks, "escalate")],
        T0.replace(hour=0),
        T0.replace(hour=0) + timedelta(days=1),
        T0 + timedelta(hours=2),
    )
    assert [o.outcome for o in found] == [Outcome.CONFIRMED]


def test_a_thanks_that_says_it_failed_is_a_recontact() -> None:
    messages = _answered()
    back = _inbound(
        "c1",
        "conv-c1",
        T0 + timedelta(hours=1),
        "thanks but it still doesn't work",
        Channel.WEB_FORM,
    )
    assert _judge([*messages, back], LATER) is Outcome.RECONTACTED


def test_another_customers_message_is_no_recontact_and_open_windows_are_pending() -> None:
    messages = _answered()
    other = _inbound("c2", "conv-c2", T0 + timedelta(hours=1), "hello?", Channel.WHATSAPP)
    assert _judge([*messages, other], T0 + timedelta(hours=5)) is Outcome.PENDING
    assert _judge([*messages, other], T0 + timedelta(hours=80)) is Outcome.QUIET


def test_rates_side_by_side() -> None:
    answered = _answered("a")
    escalated_q = _inbound("b", "conv-b", T0, "I want a refund", Channel.WEB_FORM)
    recontacted = _answered("c")
    back = _inbound("c", "conv-c2", T0 + timedelta(hours=2), "no luck", Channel.EMAIL)
    found = outcomes(
        [*answered, escalated_q, _reply(escalated_q, "escalate"), *recontacted, back],
        T0.replace(hour=0),
        T0.replace(hour=0) + timedelta(days=1),
        LATER,
    )
    result = figures(found)
    assert (result.conversations, result.answered, result.handed_over) == (3, 2, 1)
    assert (result.naive_rate, result.honest_rate) == (0.6667, 0.3333)
    assert figures(()).naive_rate is None


@pytest.mark.parametrize(
    ("text", "confirms"),
    [
        ("Thanks, that worked!", True),
        ("ok thx", True),
        ("It worked, many thanks. Kind regards, Ana", True),
        ("perfect, sorted", True),
        ("thanks but it still doesn't work", False),
        ("Thank you! How do I export as well?", False),
        ("Thank you, I will try it tomorrow", False),
        ("that didn’t help", False),
        ("I want a refund", False),
        ("thanks " * 30, False),
    ],
)
def test_confirmations(text: str, confirms: bool) -> None:
    assert is_confirmation(text) is confirms


def test_the_due_digest_and_the_next_run() -> None:
    morning = datetime(2026, 11, 21, 5, 59, tzinfo=UTC)
    assert due_day(morning, 6) == date(2026, 11, 19)  # today's is not due yet: catch up
    assert due_day(morning.replace(hour=6, minute=0), 6) == date(2026, 11, 20)
    assert next_run(morning, 6) == datetime(2026, 11, 21, 6, tzinfo=UTC)
    assert next_run(morning.replace(hour=6), 6) == datetime(2026, 11, 22, 6, tzinfo=UTC)


def test_charts_are_static_labelled_svg() -> None:
    made = [
        charts.bars("Reasons <b>", [("refund", 3.0), ("pricing", 1.0)]),
        charts.bars("Empty", []),
        charts.grouped_bars(
            "In/out", ["email", "whatsapp"], [("in", [3.0, 0.0]), ("out", [2.0, 0.0])]
        ),
        charts.lines("Trend", ["11-19", "11-20"], [("email", [None, 0.4]), ("web", [0.5, 0.6])]),
    ]
    for svg in made:
        assert svg.startswith("<svg")
        assert svg.endswith("</svg>")
        assert 'role="img"' in svg
        assert "<title>" in svg
        assert "script" not in svg.lower()
    assert "Reasons &lt;b&gt;" in made[0]
    assert "no data" in made[1]
    assert made[3].count("<polyline") == 1  # one point for email: no line, a dot


def test_titles_and_groups() -> None:
    assert suggest_title(["Hi, how do I connect Tasklane to Salesforce?"]) == (
        "How to connect Tasklane to Salesforce"
    )
    assert suggest_title(["dark mode??", "Is there a way to use a dark theme?"]) == (
        "How to use a dark theme"
    )
    assert (
        suggest_title(["Our Gantt export is broken. Please help"]) == "Our Gantt export is broken"
    )
    near = [[1.0, 0.1, 0.0], [0.0, 0.1, 1.0], [0.9, 0.2, 0.0], [1.0, 0.0, 0.1]]
    assert [sorted(g.members) for g in group(near, 0.8)] == [[0, 2, 3], [1]]
    assert group([], 0.5) == []
