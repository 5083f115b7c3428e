"""The rule-file schema: strict, frozen structs so a typo fails at load with its location.

A rule file is YAML:

    rules:
      - id: refund-request
        stage: input
        description: Customer asks for money back.
        when: {any_phrases: [refund, money back]}
        then: {action: escalate, reason: refund, urgency: high}
        examples:
          match: ["I want a refund"]
          no_match: ["How do I reset my password?"]

Every key inside one `when` must hold (they are ANDed); `all`, `any` and `not` nest.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Annotated, Literal, get_args

import msgspec

from fte_core.models import Channel, ModelLabel, Priority
from fte_core.text import phrase_regex

RULE_ID = r"^[a-z0-9][a-z0-9-]{1,62}$"

INPUT_REASONS = frozenset(
    {
        "pricing",
        "refund",
        "legal",
        "human_request",
        "negative_sentiment",
        "account_security",
        "prompt_injection",
        "unsupported_language",
    }
)
OUTPUT_REASONS = frozenset(
    {"unapproved_commitment", "pricing_disclosure", "prompt_leak", "ungrounded"}
)
PIPELINE_REASONS = frozenset({"no_kb_match", "policy_error", "responder_error"})
# An output rule that reads the model's labels (`model_flags_any`) escalates what the input
# rules missed with the input reason it means, so the right team gets it.
MODEL_FLAG_REASONS = INPUT_REASONS - {"negative_sentiment", "unsupported_language"}

Stage = Literal["input", "output"]
ActionName = Literal["escalate", "set_priority", "tag", "block"]
Score = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
Phrase = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Pattern = Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
NonEmpty = Annotated[str, msgspec.Meta(min_length=1)]
# What `language_in` accepts: the detector's languages, and `other` for any other one.
LanguageCode = Literal["en", "es", "fr", "de", "pt", "it", "other"]


class SimilarTo(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Meaning, not words: the message is close to one of the rule's `match` examples (and
    `exemplars`). `thresholds` maps an embedder's id to the threshold `fte rules calibrate`
    measured with it: a threshold belongs to the embedder it was measured with, and the
    offline (hashing) and semantic (MiniLM) embedders each need their own."""

    thresholds: dict[str, Score] = msgspec.field(default_factory=dict)
    exemplars: tuple[NonEmpty, ...] = ()

    def __post_init__(self) -> None:
        for embedder, threshold in self.thresholds.items():
            if round(threshold, 4) != threshold:
                raise ValueError(
                    f"`thresholds.{embedder}` takes at most 4 decimals, got {threshold!r}"
                )


class Condition(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A test on one message. Keys present are ANDed; at least one is required."""

    any_phrases: tuple[Phrase, ...] | None = None
    all_phrases: tuple[Phrase, ...] | None = None
    patterns: tuple[Pattern, ...] | None = None
    # Occurrences of the phrases inside these longer phrases do not count.
    except_within: tuple[Phrase, ...] | None = None
    sentiment_below: Score | None = None
    sentiment_above: Score | None = None
    channel_in: tuple[Channel, ...] | None = None
    similar_to: SimilarTo | None = None
    language_in: tuple[LanguageCode, ...] | None = None
    language_not_in: tuple[LanguageCode, ...] | None = None
    # Output stage: the model labelled the customer's message with one of these.
    model_flags_any: tuple[ModelLabel, ...] | None = None
    # The text quotes the rule files: a loaded rule's id, a reason code or a rule key.
    # The list is derived from the loaded rules, so a new rule is protected at once.
    quotes_rules: Literal[True] | None = None
    all: tuple[Condition, ...] | None = None
    any: tuple[Condition, ...] | None = None
    not_: Condition | None = msgspec.field(default=None, name="not")

    def __post_init__(self) -> None:
        present = [f for f in self.__struct_fields__ if getattr(self, f) is not None]
        if not present:
            raise ValueError("a condition needs at least one test")
        for name in (
            "any_phrases",
            "all_phrases",
            "patterns",
            "except_within",
            "channel_in",
            "language_in",
            "language_not_in",
            "model_flags_any",
            "all",
            "any",
        ):
            value = getattr(self, name)
            if value is not None and len(value) == 0:
                raise ValueError(f"`{name}` must not be empty")
        for name in ("sentiment_below", "sentiment_above"):
            value = getattr(self, name)
            if value is not None and round(value, 4) != value:
                raise ValueError(f"`{name}` takes at most 4 decimals, got {value!r}")
        if self.except_within and not (self.any_phrases or self.all_phrases):
            raise ValueError("`except_within` needs `any_phrases` or `all_phrases` beside it")
        phrases = (self.any_phrases or ()) + (self.all_phrases or ())
        for phrase in phrases + (self.except_within or ()):
            phrase_regex(phrase)
        for pattern in self.patterns or ():
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"invalid pattern ({exc}): {pattern}") from exc


class Then(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    action: ActionName
    reason: str | None = None
    urgency: Priority | None = None
    priority: Priority | None = None
    tag: Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9_-]{1,40}$")] | None = None
    # A fallback escalation counts only when no other rule escalates or blocks: a foreign
    # refund request goes to Billing as `refund`, not to Support as a language question.
    fallback: bool = False


class Example(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    text: NonEmpty
    channel: Channel = Channel.EMAIL
    # for output rules: the labels the model gave the customer's message
    model_flags: tuple[ModelLabel, ...] = ()


class Examples(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    match: tuple[str | Example, ...] = ()
    no_match: tuple[str | Example, ...] = ()


class Rule(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    id: Annotated[str, msgspec.Meta(pattern=RULE_ID)]
    stage: Stage
    description: NonEmpty
    when: Condition
    then: Then
    examples: Examples = Examples()
    enabled: bool = True

    def __post_init__(self) -> None:
        problem = _check_then(self.stage, self.then, reads_model_flags(self.when))
        if problem:
            raise ValueError(problem)
        if self.stage == "input" and reads_model_flags(self.when):
            raise ValueError(
                "`model_flags_any` is for `stage: output` rules: the model labels the "
                "customer's message in the same call that writes the draft"
            )
        conditions = (self.when, *_nested(self.when))
        if any(c.not_ is not None and reads_model_flags(c.not_) for c in conditions):
            raise ValueError(
                "`model_flags_any` cannot be inside `not`: a model label may add an "
                "escalation, never remove one"
            )


class RuleFile(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    rules: tuple[Rule, ...]


def rule_vocabulary(rule_ids: Iterable[str]) -> tuple[str, ...]:
    """The words of the rule files no ordinary sentence uses: rule ids with a hyphen
    (`refund-words`), reason codes and keys with an underscore (`human_request`,
    `any_phrases`). One-word ids, reasons and keys (`refund`, `when`) are ordinary words."""
    keys = {
        name
        for struct in (Condition, Then, SimilarTo, Example, Examples)
        for name in struct.__struct_encode_fields__
    }
    reasons = INPUT_REASONS | OUTPUT_REASONS | PIPELINE_REASONS
    words = {*rule_ids, *reasons, *keys, *get_args(ActionName)}
    return tuple(sorted((w for w in words if "-" in w or "_" in w), key=lambda w: (-len(w), w)))


def _nested(cond: Condition) -> tuple[Condition, ...]:
    """Every condition inside this one, at any depth."""
    direct = (*(cond.all or ()), *(cond.any or ()), *((cond.not_,) if cond.not_ else ()))
    return tuple(c for d in direct for c in (d, *_nested(d)))


def reads_model_flags(cond: Condition) -> bool:
    return any(c.model_flags_any is not None for c in (cond, *_nested(cond)))


def _check_then(stage: str, then: Then, model_flags: bool = False) -> str | None:
    allowed = {"input": {"escalate", "set_priority", "tag"}, "output": {"block", "tag"}}[stage]
    if then.action not in allowed:
        return f"`action: {then.action}` is not allowed at stage `{stage}` (use {sorted(allowed)})"
    if then.action in ("escalate", "block"):
        reasons = INPUT_REASONS if stage == "input" else OUTPUT_REASONS
        if stage == "output" and model_flags:
            reasons = OUTPUT_REASONS | MODEL_FLAG_REASONS
        if then.reason not in reasons:
            return f"`reason` must be one of {sorted(reasons)}, got {then.reason!r}"
    if then.fallback and then.action not in ("escalate", "block"):
        return "`fallback` only applies to `escalate` and `block`"
    if then.action == "set_priority" and then.priority is None:
        return "action `set_priority` needs `priority`"
    if then.action == "tag" and then.tag is None:
        return "action `tag` needs `tag`"
    return None


def example_flags(example: str | Example) -> tuple[str, ...]:
    return example.model_flags if isinstance(example, Example) else ()


def example_text(example: str | Example) -> tuple[str, Channel]:
    if isinstance(example, Example):
        return example.text, example.channel
    return example, Channel.EMAIL
