"""Rules compiled to a small condition tree over features.

Text conditions become numbered *text atoms* (phrases and patterns), all of a stage's
atoms matched together on every view of the message (`matcher.TextMatcher`) before the
engine runs; the tree refers to them by index. Both evaluators (durable_rules and the
pure-Python reference) consume the same tree, so they can be held equal.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from fte_core.models import Channel, Priority
from fte_core.policy.matcher import AtomSource, TextMatcher
from fte_core.policy.schema import Condition, Rule, Then, example_text


@dataclass(frozen=True, slots=True)
class TextAtom:
    index: int


@dataclass(frozen=True, slots=True)
class SentimentBelow:
    value: float


@dataclass(frozen=True, slots=True)
class SentimentAbove:
    value: float


@dataclass(frozen=True, slots=True)
class ChannelIn:
    channels: tuple[Channel, ...]


@dataclass(frozen=True, slots=True)
class Similar:
    """The message's similarity to rule `slot`'s examples reaches `threshold`."""

    slot: int
    threshold: float


@dataclass(frozen=True, slots=True)
class SimilaritySlot:
    rule_id: str
    texts: tuple[str, ...]  # the rule's match examples and extra exemplars
    embedder: str | None  # the active embedder, when the rule has a threshold for it
    calibrated: bool
    calibrated_for: tuple[str, ...] = ()  # every embedder the rule has a threshold for


@dataclass(frozen=True, slots=True)
class LanguageIn:
    languages: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ModelFlagsAny:
    """The model labelled the customer's message with one of `flags` (output stage)."""

    flags: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AllOf:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    item: Node


Node = (
    TextAtom
    | SentimentBelow
    | SentimentAbove
    | ChannelIn
    | LanguageIn
    | Similar
    | ModelFlagsAny
    | AllOf
    | AnyOf
    | Not
)


@dataclass(frozen=True, slots=True)
class CompiledRule:
    id: str
    order: int  # position in the rule set: ties in urgency keep file order
    stage: str
    then: Then
    condition: Node
    source: Rule
    atoms: tuple[int, ...] = ()  # the text atoms its condition reads


@dataclass(frozen=True, slots=True)
class StageRules:
    """One stage's rules with the text atoms they need, ready to evaluate."""

    stage: str
    rules: tuple[CompiledRule, ...]
    atoms: tuple[AtomSource, ...]
    matcher: TextMatcher  # every atom on every view, one automaton pass per view
    uses_sentiment: bool
    uses_model_flags: bool = False
    by_id: dict[str, CompiledRule] = field(default_factory=dict)
    similarity: tuple[SimilaritySlot, ...] = ()


class _AtomTable:
    def __init__(self) -> None:
        self.sources: list[AtomSource] = []
        self._index: dict[AtomSource, int] = {}

    def add(self, source: AtomSource) -> TextAtom:
        if source not in self._index:
            self._index[source] = len(self.sources)
            self.sources.append(source)
        return TextAtom(self._index[source])


class _Slots:
    def __init__(self, embedder: str | None) -> None:
        self.embedder = embedder
        self.slots: list[SimilaritySlot] = []

    def add(self, rule: Rule, cond: Condition) -> Similar:
        similar = cond.similar_to
        assert similar is not None
        texts = tuple(example_text(e)[0] for e in rule.examples.match) + similar.exemplars
        index = next((i for i, s in enumerate(self.slots) if s.rule_id == rule.id), None)
        if index is None:
            index = len(self.slots)
            known = tuple(similar.thresholds)
            calibrated = self.embedder in similar.thresholds
            name = self.embedder if calibrated else None
            self.slots.append(SimilaritySlot(rule.id, texts, name, calibrated, known))
        threshold = similar.thresholds.get(self.embedder or "", 1.0)
        return Similar(index, threshold)


def vocabulary_pattern(vocabulary: tuple[str, ...]) -> str:
    """One pattern for `quotes_rules`: any of the words, whole, longest first."""
    return r"(?<![a-z0-9_-])(?:" + "|".join(re.escape(w) for w in vocabulary) + r")(?![a-z0-9_])"


def _compile_condition(
    cond: Condition,
    atoms: _AtomTable,
    slots: _Slots | None = None,
    rule: Rule | None = None,
    vocabulary: tuple[str, ...] = (),
) -> Node:
    parts: list[Node] = []
    exceptions = cond.except_within or ()
    if cond.any_phrases:
        parts.append(atoms.add(AtomSource(phrases=cond.any_phrases, exceptions=exceptions)))
    if cond.all_phrases:
        parts.extend(
            atoms.add(AtomSource(phrases=(p,), exceptions=exceptions)) for p in cond.all_phrases
        )
    if cond.patterns:
        parts.append(atoms.add(AtomSource(patterns=cond.patterns)))
    if cond.quotes_rules:
        if not vocabulary:
            raise ValueError("`quotes_rules` needs the rule set's vocabulary")
        parts.append(atoms.add(AtomSource(patterns=(vocabulary_pattern(vocabulary),))))
    if cond.sentiment_below is not None:
        parts.append(SentimentBelow(cond.sentiment_below))
    if cond.sentiment_above is not None:
        parts.append(SentimentAbove(cond.sentiment_above))
    if cond.channel_in:
        parts.append(ChannelIn(tuple(dict.fromkeys(cond.channel_in))))
    if cond.similar_to is not None:
        if slots is None or rule is None:
            raise ValueError("`similar_to` needs a rule")
        parts.append(slots.add(rule, cond))
    if cond.language_in:
        parts.append(LanguageIn(tuple(dict.fromkeys(cond.language_in))))
    if cond.language_not_in:
        parts.append(Not(LanguageIn(tuple(dict.fromkeys(cond.language_not_in)))))
    if cond.model_flags_any:
        parts.append(ModelFlagsAny(tuple(dict.fromkeys(cond.model_flags_any))))

    def inner(c: Condition) -> Node:
        return _compile_condition(c, atoms, slots, rule, vocabulary)

    if cond.all:
        parts.append(AllOf(tuple(inner(c) for c in cond.all)))
    if cond.any:
        parts.append(AnyOf(tuple(inner(c) for c in cond.any)))
    if cond.not_ is not None:
        parts.append(Not(inner(cond.not_)))
    return parts[0] if len(parts) == 1 else AllOf(tuple(parts))


def atoms_of(node: Node) -> tuple[int, ...]:
    if isinstance(node, TextAtom):
        return (node.index,)
    if isinstance(node, AllOf | AnyOf):
        return tuple(i for n in node.items for i in atoms_of(n))
    if isinstance(node, Not):
        return atoms_of(node.item)
    return ()


def _uses(node: Node, kinds: type | tuple[type, ...]) -> bool:
    """Whether the condition reads a feature of one of these node kinds."""
    if isinstance(node, kinds):
        return True
    if isinstance(node, AllOf | AnyOf):
        return any(_uses(n, kinds) for n in node.items)
    if isinstance(node, Not):
        return _uses(node.item, kinds)
    return False


def compile_stage(
    stage: str,
    rules: list[tuple[int, Rule]],
    embedder: str | None = None,
    vocabulary: tuple[str, ...] = (),
) -> StageRules:
    """`embedder` picks each `similar_to` threshold (none: every such rule uncalibrated);
    `vocabulary` is what `quotes_rules` protects (schema.rule_vocabulary)."""
    atoms = _AtomTable()
    slots = _Slots(embedder)
    compiled = []
    for order, rule in rules:
        condition = _compile_condition(rule.when, atoms, slots, rule, vocabulary)
        compiled.append(
            CompiledRule(
                id=rule.id,
                order=order,
                stage=stage,
                then=rule.then,
                condition=condition,
                source=rule,
                atoms=tuple(dict.fromkeys(atoms_of(condition))),
            )
        )
    sources = tuple(atoms.sources)
    return StageRules(
        stage=stage,
        rules=tuple(compiled),
        atoms=sources,
        matcher=TextMatcher(sources),
        similarity=tuple(slots.slots),
        uses_sentiment=any(_uses(r.condition, (SentimentBelow, SentimentAbove)) for r in compiled),
        uses_model_flags=any(_uses(r.condition, ModelFlagsAny) for r in compiled),
        by_id={r.id: r for r in compiled},
    )


def urgency_of(then: Then) -> Priority:
    return then.urgency or Priority.NORMAL
