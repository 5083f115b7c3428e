"""`fte rules calibrate`: each `similar_to` threshold measured, explained and written back.

For a rule with `similar_to`, the threshold is set just above the most similar text that
must NOT fire it: the `no_match` examples of every rule on its stage (`fte rules test
--strict` fails any of them that another rule escalates, so none may fire this one
either) and a benign corpus (the product documentation's questions and the sample
tickets the agent answers). So, on the texts
we know, the similarity half of the rule adds no false alarm; how much it catches is
reported from its `match` examples, each scored against the others (leave-one-out), so
staff see whether the examples are varied enough to generalise.

A text the rule's other conditions already keep out (a `not` naming a harmless sense, a
language gate) cannot fire it whatever its similarity, so it does not set the bar: staff
fix a near-miss with a `not` and win the recall back for every other message.

The threshold is written into the rule file together with the embedder's id: a
threshold measured with one embedder means nothing for another, and the rules refuse to
load until they are recalibrated.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from fte_core.errors import RuleError
from fte_core.models import Channel
from fte_core.policy.compiled import StageRules
from fte_core.policy.engine import facts_for, features
from fte_core.policy.loader import RuleSet
from fte_core.policy.reference import Facts, holds
from fte_core.policy.schema import example_text
from fte_core.policy.similarity import best_score, embed_now, embed_probes
from fte_core.ports import Embedder
from fte_core.text import normalize

_MARKUP = re.compile(r"^[#*>\s-]+|[*\s]+$")  # headings, bullets, emphasis
MARGIN = 200  # basis points above the closest text that must not fire (0.02 cosine)
# Below half the maximum similarity, "close in meaning" is noise for any embedder (word
# overlap alone gets a lexical embedder there), so no threshold is set lower.
FLOOR = 5_000


@dataclass(frozen=True, slots=True)
class Calibration:
    rule_id: str
    file: str
    threshold: float
    embedder: str
    closest_negative: float  # the highest similarity of a text that must not fire
    negatives: int
    caught: int  # match examples reaching the threshold from the other examples
    examples: int
    # The pair that set the threshold: the text that must not fire and the example it is
    # closest to. An example that sits that close to ordinary questions raises the bar
    # for all the others: rewording or removing it is how staff win recall back.
    closest_text: str = ""
    closest_example: str = ""

    def explain(self) -> str:
        """The plain-language line compliance staff read."""
        return (
            f"{self.rule_id}: threshold {self.threshold:.4f} (embedder {self.embedder}). "
            f"It fires when a message is at least {self.threshold:.0%} similar to one of its "
            f"{self.examples} examples. The closest of {self.negatives} texts that must not "
            f"fire scored {self.closest_negative:.0%} ({_short(self.closest_text)!r}, close "
            f"to the example {_short(self.closest_example)!r}). Written differently, "
            f"{self.caught} of {self.examples} examples still reach it from the others."
        )


def _short(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def benign_corpus(context: Path) -> list[str]:
    """The product documentation (its headings and paragraphs: what customers ask about)
    and the sample tickets the agent answers."""
    texts: list[str] = []
    docs = context / "product-docs.md"
    if docs.is_file():
        for block in re.split(r"\n\s*\n", docs.read_text(encoding="utf-8")):
            text = _MARKUP.sub("", block).strip()
            if len(text) > 12:
                texts.append(text)
    tickets = context / "sample-tickets.json"
    if tickets.is_file():
        for ticket in json.loads(tickets.read_text(encoding="utf-8")):
            if ticket.get("expected", {}).get("action") == "answer":
                texts.append(str(ticket["text"]))
    return texts


def calibrate(rules: RuleSet, embedder: Embedder, benign: Sequence[str]) -> list[Calibration]:
    results = []
    # A message's score is its best probe's (its questions', inbound; the whole draft,
    # outbound), as the engine scores it.
    benign_vectors = {
        name: embed_probes(embedder, benign, name)
        for name in {loaded.rule.stage for loaded in rules.rules}
    }
    # The benign texts' facts per stage, once: they do not depend on the rule.
    benign_facts = {
        name: [_wide_open(rules.stage(name), t, Channel.EMAIL) for t in benign]
        for name in {loaded.rule.stage for loaded in rules.rules}
    }
    near_misses = _near_misses(rules)
    for loaded in rules.rules:
        rule = loaded.rule
        stage = rules.stage(rule.stage)
        slot = next((s for s in stage.similarity if s.rule_id == rule.id), None)
        if slot is None or not rule.enabled:
            continue
        exemplars = embed_now(embedder, [normalize(t) for t in slot.texts])
        compiled = stage.by_id[rule.id]
        own = near_misses[rule.stage]
        negatives = [text for text, _ in own]
        negative_vectors = embed_probes(embedder, negatives, rule.stage)
        texts = [*negatives, *benign]
        facts = [_wide_open(stage, t, c) for t, c in own] + benign_facts[rule.stage]
        gates = [holds(compiled.condition, f) for f in facts]
        candidates = [*negative_vectors, *benign_vectors[rule.stage]]
        scores = [
            max(best_score(v, exemplars) for v in probes) if gate else 0
            for probes, gate in zip(candidates, gates, strict=True)
        ]
        closest = max(scores, default=0)
        at = scores.index(closest) if scores else None
        nearest = ""
        if at is not None:
            vector = max(candidates[at], key=lambda v: best_score(v, exemplars))
            nearest = slot.texts[
                max(range(len(exemplars)), key=lambda i: best_score(vector, [exemplars[i]]))
            ]
        threshold = min(10_000, max(FLOOR, closest + MARGIN))
        caught = sum(
            best_score(exemplars[i], exemplars[:i] + exemplars[i + 1 :]) >= threshold
            for i in range(len(exemplars))
        )
        results.append(
            Calibration(
                rule_id=rule.id,
                file=loaded.file,
                threshold=threshold / 10_000,
                embedder=embedder.name,
                closest_negative=closest / 10_000,
                negatives=len(candidates),
                caught=caught,
                examples=len(exemplars),
                closest_text=texts[at] if at is not None else "",
                closest_example=nearest,
            )
        )
    return results


def _near_misses(rules: RuleSet) -> dict[str, list[tuple[str, Channel]]]:
    """Every enabled rule's `no_match` examples, per stage, each text once: harmless
    messages sharing some rule's vocabulary are exactly what a meaning rule must not
    catch."""
    found: dict[str, dict[str, Channel]] = {}
    for loaded in rules.rules:
        if loaded.rule.enabled:
            stage = found.setdefault(loaded.rule.stage, {})
            for example in loaded.rule.examples.no_match:
                text, channel = example_text(example)
                stage.setdefault(text, channel)
    return {name: list(texts.items()) for name, texts in found.items()}


def _wide_open(stage: StageRules, text: str, channel: Channel) -> Facts:
    """`text`'s facts with every similarity at its maximum: a rule that still does not
    fire on them is kept out by its other conditions, whatever the similarity."""
    facts = facts_for(stage, features(text, channel, numbers=stage.matcher.wants_numbers))
    return dataclasses.replace(facts, similarity=(10_000,) * len(stage.similarity))


def write_back(directory: Path, calibrations: Sequence[Calibration]) -> list[str]:
    """Set `threshold` and `embedder` under each rule's `similar_to`, keeping the rest of
    the file (comments, layout) as it is. Returns the files changed."""
    changed = []
    by_file: dict[str, list[Calibration]] = {}
    for c in calibrations:
        by_file.setdefault(c.file, []).append(c)
    for name, items in by_file.items():
        path = directory / name
        text = path.read_text(encoding="utf-8")
        updated = text
        for item in items:
            updated = _set_values(updated, name, item)
        if updated != text:
            path.write_text(updated, encoding="utf-8")
            changed.append(name)
    return changed


def _set_values(text: str, name: str, item: Calibration) -> str:
    """Set `thresholds.<embedder>` under the rule's `similar_to` (other embedders'
    thresholds stay: each model keeps its own)."""
    node = _similar_to_node(yaml.compose(text, Loader=yaml.SafeLoader), item.rule_id)
    if node is None or node.flow_style:
        raise RuleError(
            "write `similar_to:` as a block (one key per line) so it can be calibrated",
            file=name,
            rule_id=item.rule_id,
        )
    value = f"{item.threshold:.4f}"
    present = {k.value: v for k, v in node.value}
    thresholds = present.get("thresholds")
    indent = node.value[0][0].start_mark.column if node.value else node.start_mark.column
    if thresholds is None:
        start = node.start_mark.index
        entry = f"thresholds:\n{' ' * (indent + 2)}{item.embedder}: {value}\n{' ' * indent}"
        return text[:start] + entry + text[start:]
    if not isinstance(thresholds, yaml.MappingNode) or thresholds.flow_style:
        raise RuleError(
            "write `thresholds:` as a block (one embedder per line) or leave it out, so it "
            "can be calibrated",
            file=name,
            rule_id=item.rule_id,
        )
    for key, scalar in thresholds.value:
        if key.value == item.embedder:
            return text[: scalar.start_mark.index] + value + text[scalar.end_mark.index :]
    first = thresholds.value[0][0]
    start = first.start_mark.index
    entry = f"{item.embedder}: {value}\n{' ' * first.start_mark.column}"
    return text[:start] + entry + text[start:]


def _similar_to_node(root: yaml.Node | None, rule_id: str) -> yaml.MappingNode | None:
    if not isinstance(root, yaml.MappingNode):
        return None
    rules = next((v for k, v in root.value if k.value == "rules"), None)
    if not isinstance(rules, yaml.SequenceNode):
        return None
    for item in rules.value:
        if not isinstance(item, yaml.MappingNode):
            continue
        ids = [v.value for k, v in item.value if k.value == "id"]
        if ids == [rule_id]:
            return _find(item, "similar_to")
    return None


def _find(node: yaml.Node, key: str) -> yaml.MappingNode | None:
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if k.value == key and isinstance(v, yaml.MappingNode):
                return v
            found = _find(v, key)
            if found is not None:
                return found
    elif isinstance(node, yaml.SequenceNode):
        for v in node.value:
            found = _find(v, key)
            if found is not None:
                return found
    return None
