"""Which words made a rule fire: the evidence a person checks a decision against.

The engine only records *that* a rule's text condition held, and on which view; a
compliance officer asks *which* of its phrases did. This re-reads one fired rule's
phrases one by one (each through the same matcher the engine uses, so exceptions,
masked letters and joined words count exactly as they did) and its patterns' matched
text. It costs a matcher per phrase, so it is for the few messages a report shows, not
for every message the pipeline handles.
"""

from __future__ import annotations

import functools
import re

from fte_core.policy.compiled import (
    AllOf,
    AnyOf,
    ChannelIn,
    CompiledRule,
    LanguageIn,
    Node,
    Not,
    SentimentAbove,
    SentimentBelow,
    Similar,
    StageRules,
)
from fte_core.policy.engine import MessageFeatures
from fte_core.policy.matcher import AtomSource, TextMatcher
from fte_core.textviews import View


@functools.lru_cache(maxsize=4096)
def _phrase_matcher(phrase: str, exceptions: tuple[str, ...]) -> TextMatcher:
    return TextMatcher([AtomSource(phrases=(phrase,), exceptions=exceptions)])


@functools.lru_cache(maxsize=1024)
def _pattern(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _views(feats: MessageFeatures) -> tuple[View, ...]:
    return feats.views or (View("written", feats.normalized),)


def _where(view: str) -> str:
    return "" if view == "written" else f" ({view} view)"


def matched_words(source: AtomSource, feats: MessageFeatures) -> list[str]:
    """The phrases of one text condition found in the message, and what its patterns
    matched, each with the view it was found in when that is not the text as written."""
    views = _views(feats)
    found = []
    for phrase in source.phrases:
        (view,) = _phrase_matcher(phrase, source.exceptions).match(views)
        if view is not None:
            found.append(f'"{phrase}"{_where(view)}')
    for pattern in source.patterns:
        regex = _pattern(pattern)
        for v in views:
            hit = regex.search(v.text)
            if hit is not None:
                found.append(f'"{hit.group()}" (a pattern){_where(v.name)}')
                break
    return found


def _conditions(node: Node, feats: MessageFeatures) -> list[str]:
    """The non-text conditions of a rule, with the message's value for each."""
    match node:
        case SentimentBelow(value):
            return [f"sentiment {feats.sentiment:.2f} (rule: below {value})"]
        case SentimentAbove(value):
            return [f"sentiment {feats.sentiment:.2f} (rule: above {value})"]
        case ChannelIn(channels):
            return [f"channel {feats.channel} (rule: {', '.join(channels)})"]
        case LanguageIn(languages):
            return [f"language {feats.language} (rule: {', '.join(languages)})"]
        case Similar(_, threshold):
            return [f"similar to the rule's examples (threshold {threshold})"]
        case AllOf(items) | AnyOf(items):
            return [c for item in items for c in _conditions(item, feats)]
        case Not(item):
            return [f"not {c}" for c in _conditions(item, feats)]
    return []


def evidence(stage: StageRules, rule_id: str, feats: MessageFeatures) -> str:
    """One line: the rule, the words it matched, and its other conditions' values."""
    rule: CompiledRule | None = stage.by_id.get(rule_id)
    if rule is None:
        return f"{rule_id}: not an active {stage.stage} rule of this set"
    words = [w for i in rule.atoms for w in matched_words(stage.atoms[i], feats)]
    parts = [*words, *_conditions(rule.condition, feats)]
    return f"{rule_id}: {'; '.join(parts) if parts else 'fired'}"
