"""The model's labels (`model_flags_any`): parsed strictly from the one model call, read by
output rules, able to add an escalation and never to remove one. The model is litellm over
real HTTP against the local OpenAI-compatible server."""

from __future__ import annotations

import itertools
import logging
import re
import shutil
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fte_core.chunking import chunk_markdown
from fte_core.context import KB_DOCUMENT, load_context
from fte_core.errors import RuleError
from fte_core.llm import LitellmResponder, model_requests_allowed
from fte_core.models import Channel, InboundMessage, Outcome, Verification
from fte_core.pipeline import Agent
from fte_core.policy import PolicyEngine, build_ruleset, load_rules
from fte_core.prompts import parse_labels
from fte_core.shadow import collect, compare
from fte_core.testing import InMemoryBus, InMemoryKnowledgeBase, InMemoryStore
from tests.openai_server import ChatRequestBody, OpenAICompatServer

ROOT = Path(__file__).resolve().parents[2]
_ids = itertools.count()


@pytest.mark.parametrize(
    ("text", "labels", "problem"),
    [
        (
            'Go to Settings.\nSOURCES: a\nLABELS: {"labels": ["refund", "legal"]}',
            ("refund", "legal"),
            None,
        ),
        ('Go to Settings.\nLABELS: {"labels": []}', (), None),
        ("Go to Settings.", (), "no LABELS line"),
        ("Go to Settings.\nLABELS: refund, legal", (), "malformed LABELS line"),
        ('Go to Settings.\nLABELS: {"labels": "refund"}', (), "malformed LABELS line"),
        ('Go to Settings.\nLABELS: {"labels": [], "extra": 1}', (), "malformed LABELS line"),
        ('Go.\nLABELS: {"labels": ["refund"]}\nLABELS: {"labels": []}', (), "2 LABELS lines"),
    ],
)
def test_labels_are_parsed_strictly_and_always_removed(
    text: str, labels: tuple[str, ...], problem: str | None
) -> None:
    parsed = parse_labels(text)
    assert parsed.labels == labels
    assert (parsed.problem or "").startswith(problem or "")
    assert bool(parsed.problem) == bool(problem)
    assert "LABELS" not in parsed.text
    assert parsed.text.startswith("Go")


def test_unknown_labels_are_set_aside() -> None:
    parsed = parse_labels('Hi\nLABELS: {"labels": ["refund", "weather", "refund"]}')
    assert parsed.labels == ("refund",)
    assert parsed.unknown == ("weather",)


def _rule(when: str, stage: str = "output", reason: str = "refund") -> str:
    action = "block" if stage == "output" else "escalate"
    return (
        "rules:\n  - id: flag-rule\n    stage: " + stage + "\n    description: d\n"
        "    when:\n      " + when + "\n"
        "    then: {action: " + action + ", reason: " + reason + "}\n"
    )


def test_model_flags_any_is_checked_at_load_with_its_line() -> None:
    with pytest.raises(RuleError) as info:
        build_ruleset([("f.yaml", _rule("model_flags_any: [refnd]"))])
    assert info.value.line == 6
    assert "allowed values: refund, pricing, legal" in info.value.detail
    with pytest.raises(RuleError, match="for `stage: output` rules") as info:
        build_ruleset([("f.yaml", _rule("model_flags_any: [refund]", stage="input"))])
    assert info.value.line == 6
    with pytest.raises(RuleError, match="cannot be inside `not`") as info:
        build_ruleset([("f.yaml", _rule("any: [{not: {model_flags_any: [legal]}}]"))])
    assert info.value.line == 6
    with pytest.raises(RuleError, match="`reason` must be one of"):  # not a label reason
        build_ruleset([("f.yaml", _rule("any_phrases: [x]", reason="refund"))])


@pytest.mark.parametrize("use_durable", [True, False])
def test_both_evaluators_read_the_labels(use_durable: bool) -> None:
    when = "any: [{model_flags_any: [complaint, legal]}, {any_phrases: [lawyer]}]"
    rules = build_ruleset([("f.yaml", _rule(when, reason="legal"))])
    engine = PolicyEngine(rules, use_durable=use_durable)
    try:
        draft = "Open Settings > Export."
        assert engine.evaluate("output", draft, Channel.EMAIL).action == "allow"
        flagged = engine.evaluate("output", draft, Channel.EMAIL, model_flags=["legal"])
        assert flagged.action == "block"
        assert flagged.reasons == ("legal",)
        assert flagged.model_flags == ("legal",)
        other = engine.evaluate("output", draft, Channel.EMAIL, model_flags=["refund"])
        assert other.action == "allow"
        lawyer = engine.evaluate("output", "ask a lawyer", Channel.EMAIL, model_flags=["refund"])
        assert lawyer.action == "block"
        assert engine.disagreements == 0
    finally:
        engine.close()


# --- through the pipeline, the model over real HTTP -------------------------------------

_PASSAGE_ID = re.compile(r"\[id: ([^\]]+)\]")


def _reply(body: str, labels: str) -> object:
    """A model that answers from the first offered passage, cites it, and labels."""

    def reply(chat: ChatRequestBody) -> str:
        user = chat.messages[-1].content or ""
        cited = _PASSAGE_ID.search(user)
        source = cited.group(1) if cited else "none"
        return f"{body}\nSOURCES: {source}\n{labels}"

    return reply


@pytest.fixture
def server() -> Iterator[OpenAICompatServer]:
    with model_requests_allowed(False), OpenAICompatServer(reply="") as srv:
        yield srv


@pytest.fixture
async def agent(server: OpenAICompatServer) -> AsyncIterator[Agent]:
    kb = InMemoryKnowledgeBase()
    docs = (ROOT / "context" / "product-docs.md").read_text(encoding="utf-8")
    await kb.ingest(KB_DOCUMENT, chunk_markdown(KB_DOCUMENT, docs))
    responder = LitellmResponder(
        "openai/test", api_base=server.base_url, api_key="sk-test", num_retries=0
    )
    policy = PolicyEngine(load_rules(ROOT / "rules"))
    yield Agent(
        policy=policy,
        context=load_context(ROOT / "context"),
        store=InMemoryStore(),
        knowledge=kb,
        responder=responder,
        bus=InMemoryBus(),
    )
    policy.close()
    await responder.aclose()


async def _handle(agent: Agent, text: str) -> Outcome:
    n = next(_ids)
    return await agent.handle(
        InboundMessage(
            channel=Channel.EMAIL,
            provider_message_id=f"labels-{n}",
            text=text,
            received_at=datetime.now(UTC),
            sender_email=f"labels{n}@example.com",
            verified_by=Verification.EMAIL_AUTH,
        )
    )


QUESTION = "How do I export a board to CSV?"
ANSWER = "Open the board menu and choose Export, then CSV."


async def test_without_labels_the_answer_is_sent(agent: Agent, server: OpenAICompatServer) -> None:
    server.reply = _reply(ANSWER, 'LABELS: {"labels": []}')
    outcome = await _handle(agent, QUESTION)
    assert outcome.record.action == "answer"
    assert "LABELS" not in " ".join(outcome.reply.parts)
    assert "Export" in " ".join(outcome.reply.parts)


async def test_a_model_label_adds_an_escalation_with_its_reason(
    agent: Agent, server: OpenAICompatServer, tmp_path: Path
) -> None:
    server.reply = _reply(ANSWER, 'LABELS: {"labels": ["complaint", "legal"]}')
    outcome = await _handle(agent, QUESTION)
    assert outcome.record.input_decision.action == "allow"  # the phrase rules saw nothing
    output = outcome.record.output_decision
    assert output is not None
    assert output.action == "block"
    assert output.model_flags == ("complaint", "legal")
    assert "model-flag-legal" in output.rule_ids
    assert outcome.record.action == "escalate"
    assert outcome.record.reasons[0] == "legal"
    assert outcome.record.blocked_draft is not None
    assert "labels" in server.chat_requests[-1].messages[0].content.lower()  # asked for them
    await _shadow_replays_the_labels(agent, tmp_path)


async def _shadow_replays_the_labels(agent: Agent, tmp_path: Path) -> None:
    """`fte rules shadow` replays a draft with the labels its model gave: the same rules
    block it again, and rules without the label file would have let it through."""
    since = datetime.now(UTC) - timedelta(hours=1)
    samples = await collect(agent.store, since)
    assert [s.model_flags for s in samples if s.stage == "output"] == [("complaint", "legal")]
    proposed_dir = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", proposed_dir)
    (proposed_dir / "output-model-labels.yaml").unlink()
    proposed = PolicyEngine(load_rules(proposed_dir))
    try:
        for other, changes in ((agent.policy, 0), (proposed, 1)):
            report = compare(
                agent.policy,
                other,
                samples,
                since=since,
                until=datetime.now(UTC),
                directories=("rules", str(proposed_dir)),
                team_of=lambda reason: reason or "support",
            )
            assert report.output.changed == changes
    finally:
        proposed.close()


async def test_labels_never_remove_an_input_escalation(
    agent: Agent, server: OpenAICompatServer
) -> None:
    server.reply = _reply(ANSWER, 'LABELS: {"labels": []}')
    outcome = await _handle(agent, "I want a refund for last month, please.")
    assert outcome.record.action == "escalate"
    assert "refund" in outcome.record.reasons
    assert server.chat_requests == []  # decided before the model was asked


async def test_labels_never_remove_an_output_block(
    agent: Agent, server: OpenAICompatServer
) -> None:
    server.reply = _reply("The Business plan costs $24 per seat.", 'LABELS: {"labels": []}')
    outcome = await _handle(agent, QUESTION)
    assert outcome.record.action == "escalate"
    assert "pricing_disclosure" in outcome.record.reasons


async def test_a_malformed_labels_line_keeps_the_rule_floor(
    agent: Agent, server: OpenAICompatServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.reply = _reply("The Business plan costs $24 per seat.", "LABELS: legal!!")
    with caplog.at_level(logging.WARNING, logger="fte_core.llm"):
        blocked = await _handle(agent, QUESTION)
    assert "pricing_disclosure" in blocked.record.reasons
    assert any("no usable labels" in r.getMessage() for r in caplog.records)
    server.reply = _reply(ANSWER, 'LABELS: {"labels": ["weather"]}')
    with caplog.at_level(logging.WARNING, logger="fte_core.llm"):
        answered = await _handle(agent, QUESTION)
    assert answered.record.action == "answer"
    assert answered.record.output_decision is not None
    assert answered.record.output_decision.model_flags == ()
    assert any("unknown labels" in r.getMessage() for r in caplog.records)
