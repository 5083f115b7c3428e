"""fte_core: a rule-engine-first customer-success agent, as a typed library.

Build an agent from a rules directory, the company dossier and adapters (or the fakes in
`fte_core.testing`), then `await agent.handle(message)`. See README.md, "For developers".
"""

from fte_core.chunking import chunk_markdown
from fte_core.context import Context, load_context
from fte_core.errors import (
    BusError,
    ConfigError,
    DeliveryError,
    DeliveryRejected,
    FteError,
    InvalidTransition,
    NotFound,
    PolicyError,
    ResponderError,
    RuleError,
    RuleLimitError,
    StorageError,
    ValidationError,
)
from fte_core.formatting import ChannelConfig, format_for_channel
from fte_core.llm import LitellmResponder
from fte_core.models import (
    Channel,
    Conversation,
    Customer,
    Decision,
    DecisionRecord,
    InboundMessage,
    Outcome,
    Passage,
    Priority,
    Reply,
    Ticket,
    TicketStatus,
)
from fte_core.offline import OfflineResponder
from fte_core.pipeline import Agent, AgentConfig
from fte_core.policy import PolicyEngine, RuleSet, load_rules
from fte_core.ports import Answer, AnswerRequest, Responder

__all__ = [
    "Agent",
    "AgentConfig",
    "Answer",
    "AnswerRequest",
    "BusError",
    "Channel",
    "ChannelConfig",
    "ConfigError",
    "Context",
    "Conversation",
    "Customer",
    "Decision",
    "DecisionRecord",
    "DeliveryError",
    "DeliveryRejected",
    "FteError",
    "InboundMessage",
    "InvalidTransition",
    "LitellmResponder",
    "NotFound",
    "OfflineResponder",
    "Outcome",
    "Passage",
    "PolicyEngine",
    "PolicyError",
    "Priority",
    "Reply",
    "Responder",
    "ResponderError",
    "RuleError",
    "RuleLimitError",
    "RuleSet",
    "StorageError",
    "Ticket",
    "TicketStatus",
    "ValidationError",
    "chunk_markdown",
    "format_for_channel",
    "load_context",
    "load_rules",
]
