"""Text views: a disguised phrase still fires its rule; ordinary text gains nothing.

Disguises (composed freely, word by word): letters spaced, dotted or hyphenated
("c h a r g e"), digits and symbols for letters ("l4wyer", "$ecurity"), a symbol or
emoji inside a word ("law🔥suit"), a word broken over a line with a hyphen ("re-\\nfund"),
and one letter masked ("refu*d"). Every phrase of every plain-phrase escalation rule of
the rule set under test must still fire that very rule. And the views alone must add no
match on ordinary text: the product documentation and the sample tickets.
"""

from __future__ import annotations

import json
import re
import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fte_core.models import Channel
from fte_core.policy.engine import PolicyEngine, features
from fte_core.policy.loader import RuleSet
from fte_core.textviews import View
from tests.property.test_guardrails import Trigger, triggers

ROOT = Path(__file__).resolve().parents[2]
LEET = {"e": "3", "o": "0", "a": "4@", "s": "5$", "t": "7"}
GAPS = (" ", ".", "-", " . ", "·", "_", "  ")
INSERTS = ("🔥", "😡", ".", "~", "|", "-", "’’", "👉🏻", "_", "/")
Draw = st.DrawFn


@pytest.fixture(scope="module")
def trigger_list(guardrail_rules: RuleSet) -> list[Trigger]:
    # A `*` before the last word ("violat* gdpr") makes the phrase a regex on each view,
    # which reads every disguise of one word but not letters joined across two words.
    found = [t for t in triggers(guardrail_rules) if "*" not in t.phrase.rsplit(" ", 1)[0]]
    assert found
    return found


def _leet(draw: Draw, word: str, one: str) -> str:
    """Some letters as digits or symbols; at least one letter stays a letter."""
    chars = list(word)
    keep = draw(st.integers(0, len(chars) - 1))
    for i, ch in enumerate(chars):
        options = LEET.get(ch, "") + ("1" if ch == one else "")
        if i != keep and options and draw(st.booleans()):
            chars[i] = draw(st.sampled_from(options))
    return "".join(chars)


def _insert(draw: Draw, word: str, between: str) -> str:
    """`between` inside the word, between two letters (never between two digits)."""
    spots = [i for i in range(1, len(word)) if word[i - 1].isalpha() and word[i].isalpha()]
    if not spots:
        return word
    i = draw(st.sampled_from(spots))
    return word[:i] + between + word[i:]


@st.composite
def disguised(draw: Draw, phrase: str, engine: PolicyEngine) -> str:
    one = draw(st.sampled_from("il"))  # "1" reads as i or as l: one of them per message
    words = []
    for word in phrase.split():
        if word.endswith("*"):
            word = word[:-1] + draw(st.text(string.ascii_lowercase, max_size=3))
        if not word.isalpha() or not word.isascii() or len(word) < 2:
            words.append(word)
            continue
        kind = draw(st.sampled_from(("plain", "spaced", "leet", "insert", "line", "mask")))
        if kind == "mask" and len(word) >= 4:
            i = draw(st.integers(1, len(word) - 2))
            masked = word[:i] + draw(st.sampled_from("*#")) + word[i + 1 :]
            rules = engine.rules.input.matcher
            word = masked if rules.read_masked(masked).startswith(word[: i + 1]) else word
        if kind in ("leet", "spaced") and draw(st.booleans()):
            word = _leet(draw, word, one)
        if kind == "spaced":
            # two letters with a plain space between are two words, not a disguise
            gaps = (
                GAPS
                if len(word) >= 3
                else tuple(g for g in GAPS if not g.isspace() and " " not in g)
            )
            word = draw(st.sampled_from(gaps)).join(word)
        elif kind == "insert":
            word = _insert(draw, word, draw(st.sampled_from(INSERTS)))
        elif kind == "line":
            word = _insert(draw, word, "-\n")
        words.append(word)
    return " ".join(words)


@settings(
    deadline=None,
    max_examples=400,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_disguised_phrase_fires_its_rule(
    guardrail_engine: PolicyEngine, trigger_list: list[Trigger], data: st.DataObject
) -> None:
    trigger = data.draw(st.sampled_from(trigger_list), label="trigger")
    text = data.draw(disguised(trigger.phrase, guardrail_engine), label="text")
    channel = (trigger.channels or (Channel.EMAIL,))[0]
    decision = guardrail_engine.evaluate("input", f"Hello, {text} please.", channel)
    assert trigger.rule_id in decision.rule_ids, (trigger, text, decision)


def _ordinary_texts() -> list[str]:
    docs = (ROOT / "context" / "product-docs.md").read_text(encoding="utf-8")
    paragraphs = [p for p in re.split(r"\n\s*\n", docs) if p.strip()]
    tickets = json.loads((ROOT / "context" / "sample-tickets.json").read_text(encoding="utf-8"))
    answered = [t["text"] for t in tickets if t["expected"]["action"] == "answer"]
    assert len(paragraphs) > 50
    assert len(answered) > 30
    return paragraphs + answered


def test_views_add_no_match_to_ordinary_text(guardrail_rules: RuleSet) -> None:
    gained = []
    for text in _ordinary_texts():
        feats = features(text, Channel.EMAIL, 0.5)
        for stage in (guardrail_rules.input, guardrail_rules.output):
            written = stage.matcher.match((View("written", feats.normalized),))
            every = stage.matcher.match(feats.views)
            for atom, (alone, viewed) in enumerate(zip(written, every, strict=True)):
                if alone is None and viewed is not None:
                    gained.append((stage.stage, stage.atoms[atom], viewed, text[:80]))
    assert gained == []
