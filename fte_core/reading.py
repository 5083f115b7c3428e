"""What the agent makes of a message before it knows whose it is: its questions, their
vectors and the input rules' decision.

None of it reads the CRM, so the pipeline computes it while the store takes the message in
(fte_core.pipeline): the embedding runs in the model's thread and the rules on the loop,
beside the intake's round trips, instead of after them. A message the store then finds
already answered, or held by another worker, drops its reading: the CPU was spent, nothing
was written.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from fte_core.clock import elapsed_ms
from fte_core.closing import is_closing
from fte_core.inbound import strip_quoted_history
from fte_core.models import Channel, Decision, InboundMessage
from fte_core.overlap import beside
from fte_core.policy.engine import MessageFeatures, PolicyEngine, features
from fte_core.ports import KnowledgeBase
from fte_core.retrieval import embedded_text, questions_of


@dataclass(slots=True)
class Reading:
    text: str  # the message without quoted history: what retrieval and the model read
    questions: list[str]  # split once, for the rules and the search
    vectors: list[list[float]]  # one per question, by the knowledge base's model
    feats: MessageFeatures
    decision: Decision  # the input rules'
    latency: dict[str, float] = field(default_factory=dict)

    @property
    def closing(self) -> bool:
        """A thank-you that asks nothing: answered with a short acknowledgement."""
        return is_closing(self.text)

    @property
    def wants_passages(self) -> bool:
        """Whether the agent will search, unless the ticket turns out to be a person's:
        not for a message the rules escalate, nor for a thank-you."""
        return self.decision.action != "escalate" and not self.closing


def customer_text(message: InboundMessage) -> str:
    """An email without its quoted history; other channels as sent."""
    if message.channel == Channel.EMAIL:
        return strip_quoted_history(message.text)
    return message.text


async def read_message(
    message: InboundMessage, policy: PolicyEngine, knowledge: KnowledgeBase
) -> Reading:
    """The questions embedded once, by the knowledge base's model: the same vectors serve
    the input rules' similarity conditions and retrieval."""
    started = time.perf_counter()
    text = customer_text(message)
    questions = questions_of(text, message.subject)
    probes = tuple(embedded_text(q) for q in questions)
    # The rules read everything the customer sent (signature and quoted lines too: a
    # threat after "-- " is still a threat); retrieval and the model get `text`.
    rule_text = f"{message.subject}\n{message.text}" if message.subject else message.text
    # the text's features are computed while the model embeds the questions
    async with beside(knowledge.embed_queries(probes) if probes else None) as embedding:
        feats = features(rule_text, message.channel)
        vectors = await embedding if embedding is not None else []
    feats = policy.share_embeddings(feats, probes, vectors, knowledge.embedder_name)
    feats = await policy.with_embedding("input", feats)
    latency = {"embed": elapsed_ms(started)}
    started = time.perf_counter()
    decision = policy.evaluate_features("input", feats)
    latency["input_rules"] = elapsed_ms(started)
    return Reading(text, questions, vectors, feats, decision, latency)
