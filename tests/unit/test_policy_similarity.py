"""similar_to rules, their calibration, and the two evaluators checking each other."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
import yaml

from fte_core.embedding import HashingEmbedder
from fte_core.errors import PolicyError, RuleError
from fte_core.models import Channel
from fte_core.policy.calibrate import calibrate, write_back
from fte_core.policy.engine import PolicyEngine, features
from fte_core.policy.loader import load_rules
from fte_core.policy.similarity import RecentVectors, embed_now, similarity_probes, unit

RULE = """\
rules:
  - id: person-please
    stage: input
    description: The customer wants a person.
    when:
      similar_to:
        exemplars:
          - "i would like a real person to answer my ticket"
    then: {action: escalate, reason: human_request}
    examples:
      match:
        - "can a real person answer my ticket please"
        - "i want a person to answer me"
      no_match:
        - "how do i export my board to csv"
        - "can i change the colour of a project"
"""
BENIGN = ["How do I add a guest to a project?", "Where is the timeline view?"]


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    (tmp_path / "people.yaml").write_text(RULE, encoding="utf-8")
    return tmp_path


def test_uncalibrated_rules_refuse_to_load(rules_dir: Path) -> None:
    with pytest.raises(RuleError, match="fte rules calibrate") as caught:
        PolicyEngine(load_rules(rules_dir))
    assert caught.value.rule_id == "person-please"
    assert caught.value.file == "people.yaml"


def test_calibrate_writes_threshold_and_embedder(rules_dir: Path) -> None:
    embedder = HashingEmbedder()
    results = calibrate(load_rules(rules_dir), embedder, BENIGN)
    assert [r.rule_id for r in results] == ["person-please"]
    result = results[0]
    assert result.embedder == "hashing2-384"
    assert result.threshold > result.closest_negative
    assert "similar to one of its 3 examples" in result.explain()
    assert write_back(rules_dir, results) == ["people.yaml"]
    written = yaml.safe_load((rules_dir / "people.yaml").read_text(encoding="utf-8"))
    similar = written["rules"][0]["when"]["similar_to"]
    assert similar["thresholds"] == {"hashing2-384": pytest.approx(result.threshold)}
    # a second calibration replaces the value in place
    assert write_back(rules_dir, calibrate(load_rules(rules_dir), embedder, BENIGN)) == []


def test_a_text_the_rules_own_conditions_keep_out_does_not_set_the_bar(tmp_path: Path) -> None:
    # The near-miss is a how-to question the rule's `not` already excludes: it cannot
    # fire the rule whatever its similarity, so the threshold is measured without it.
    near_miss = "i would like a real person field to answer my ticket"
    ungated = RULE.replace('"how do i export my board to csv"', f'"{near_miss}"')
    gate = "      not:\n        any_phrases: [person field]\n      similar_to:\n"
    gated = ungated.replace("      similar_to:\n", gate)
    thresholds = []
    for text in (ungated, gated):
        (tmp_path / "people.yaml").write_text(text, encoding="utf-8")
        (result,) = calibrate(load_rules(tmp_path), HashingEmbedder(), BENIGN)
        thresholds.append(result.threshold)
    assert result.closest_text != near_miss
    assert thresholds[1] < thresholds[0]


OTHER_RULE = """\
  - id: export-words
    stage: input
    description: Tags export questions.
    when:
      any_phrases: [export]
    then: {action: tag, tag: export}
    examples:
      match:
        - "how do i export my board"
      no_match:
        - "{near_miss}"
"""


def test_another_rules_near_miss_sets_the_bar_too(tmp_path: Path) -> None:
    # `fte rules test --strict` fails a no_match example that any rule escalates, so a
    # near miss listed under another rule must not fire the meaning rule either.
    near_miss = "i would like a real person field on my ticket"
    alone = RULE
    together = RULE + OTHER_RULE.replace("{near_miss}", near_miss)
    results = []
    for text in (alone, together):
        (tmp_path / "people.yaml").write_text(text, encoding="utf-8")
        (result,) = calibrate(load_rules(tmp_path), HashingEmbedder(), BENIGN)
        results.append(result)
    assert results[1].closest_text == near_miss
    assert results[1].threshold > results[0].threshold
    assert results[1].negatives == results[0].negatives + 1


def test_each_embedder_keeps_its_own_threshold(rules_dir: Path) -> None:
    """The offline and the semantic embedder both serve: calibrating one keeps the other's."""
    small = HashingEmbedder(dimension=256)
    write_back(rules_dir, calibrate(load_rules(rules_dir), HashingEmbedder(), BENIGN))
    assert write_back(rules_dir, calibrate(load_rules(rules_dir), small, BENIGN)) == ["people.yaml"]
    written = yaml.safe_load((rules_dir / "people.yaml").read_text(encoding="utf-8"))
    assert set(written["rules"][0]["when"]["similar_to"]["thresholds"]) == {
        "hashing2-384",
        "hashing2-256",
    }
    for embedder in (HashingEmbedder(), small):
        PolicyEngine(load_rules(rules_dir), embedder=embedder).close()


@pytest.mark.parametrize("use_durable", [True, False])
def test_similar_to_fires_on_meaning_above_the_threshold(
    rules_dir: Path, use_durable: bool
) -> None:
    write_back(rules_dir, calibrate(load_rules(rules_dir), HashingEmbedder(), BENIGN))
    engine = PolicyEngine(load_rules(rules_dir), use_durable=use_durable)
    try:
        close = engine.evaluate("input", "a real person should answer my ticket", Channel.EMAIL)
        far = engine.evaluate("input", "How do I add a guest to a project?", Channel.EMAIL)
        assert close.rule_ids == ("person-please",)
        assert far.action == "allow"
    finally:
        engine.close()


def test_a_threshold_for_another_embedder_refuses_to_load(rules_dir: Path) -> None:
    write_back(rules_dir, calibrate(load_rules(rules_dir), HashingEmbedder(), BENIGN))
    with pytest.raises(RuleError, match=r"calibrated for embedder 'hashing2-384'.*recalibrate"):
        PolicyEngine(load_rules(rules_dir), embedder=HashingEmbedder(dimension=256))


class _RemoteEmbedder:
    """An embedder that waits on I/O, like a network API."""

    name = "remote"
    dimension = 8

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        import asyncio

        await asyncio.sleep(0)
        return [[1.0] * 8 for _ in texts]


def test_an_embedder_that_waits_on_io_cannot_serve_the_rules() -> None:
    with pytest.raises(PolicyError, match="computes locally"):
        embed_now(_RemoteEmbedder(), ["text"])


def test_evaluators_disagreeing_escalate_with_policy_error() -> None:
    rules = load_rules(Path(__file__).resolve().parents[2] / "rules")
    engine = PolicyEngine(rules, reference=lambda stage, facts: set())
    try:
        decision = engine.evaluate("input", "I want a refund", Channel.EMAIL)
        assert decision.action == "escalate"
        assert decision.reasons[0] == "policy_error"
        assert "refund" in decision.reasons
        assert "reference fired []" in (decision.error or "")
        assert engine.disagreements == 1
        harmless = engine.evaluate("input", "how do I export a board", Channel.EMAIL)
        assert harmless.action == "allow"  # both fired nothing: they agree
        assert engine.disagreements == 1
    finally:
        engine.close()


async def test_the_message_is_embedded_once_before_the_rules(rules_dir: Path) -> None:
    """The pipeline awaits the embedding (a model runs in a worker thread), then the rules
    reuse it: the same decision as embedding inside the engine."""
    write_back(rules_dir, calibrate(load_rules(rules_dir), HashingEmbedder(), BENIGN))
    engine = PolicyEngine(load_rules(rules_dir), embedder=HashingEmbedder())
    try:
        feats = engine.features_for("input", "a real person should answer my ticket", Channel.EMAIL)
        embedded = await engine.with_embedding("input", feats)
        assert len(embedded.embeddings) == len(embedded.probes) == 1
        assert await engine.with_embedding("input", embedded) is embedded
        assert await engine.with_embedding("output", feats) is feats  # no similar_to there
        decision = engine.evaluate_features("input", embedded)
        assert decision.rule_ids == ("person-please",)
    finally:
        engine.close()


class _Counting(HashingEmbedder):
    """The hashing embedder, counting the texts it is asked to embed."""

    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        self.texts.extend(texts)
        return await super().embed(texts)


async def test_vectors_of_the_same_embedder_are_shared_others_are_not(rules_dir: Path) -> None:
    """Retrieval's vectors of the message's questions serve the rules only when they come
    from the embedder the thresholds were measured with; otherwise the engine embeds the
    same probes itself, and decides the same."""
    write_back(rules_dir, calibrate(load_rules(rules_dir), HashingEmbedder(), BENIGN))
    counting = _Counting()
    engine = PolicyEngine(load_rules(rules_dir), embedder=counting)
    try:
        text = "How do I export my tasks? Also a real person should answer my ticket"
        probes = similarity_probes(text)
        assert len(probes) == 2  # each question compared on its own
        vectors = await HashingEmbedder().embed(list(probes))
        feats = features(text, Channel.EMAIL)
        counting.texts.clear()  # the rules' own examples, embedded as they loaded
        shared = engine.share_embeddings(feats, probes, vectors, counting.name)
        assert await engine.with_embedding("input", shared) is shared
        assert counting.texts == []
        foreign = engine.share_embeddings(feats, probes, vectors, "another-model")
        assert foreign.embeddings == ()
        embedded = await engine.with_embedding("input", foreign)
        assert counting.texts == list(probes)
        for variant in (shared, embedded):
            decision = engine.evaluate_features("input", variant)
            assert decision.rule_ids == ("person-please",)
    finally:
        engine.close()


async def test_a_repeated_draft_is_embedded_once_and_scored_the_same(rules_dir: Path) -> None:
    """The offline responder's own words repeat (one introduction per article): the
    engine remembers their vectors, so a repeated draft costs no embedding and gets the
    same scores; a new draft is embedded; the memory is bounded."""
    write_back(rules_dir, calibrate(load_rules(rules_dir), HashingEmbedder(), BENIGN))
    counting = _Counting()
    engine = PolicyEngine(load_rules(rules_dir), embedder=counting)
    try:
        counting.texts.clear()
        draft = 'From our help article "Exporting a board":'
        first = await engine.with_embedding("input", features(draft, Channel.EMAIL))
        again = await engine.with_embedding("input", features(draft, Channel.EMAIL))
        assert counting.texts == [first.normalized]  # embedded once
        assert again.embeddings == first.embeddings
        decisions = [engine.evaluate_features("input", f) for f in (first, again)]
        assert decisions[0] == decisions[1]
        other = await engine.with_embedding("input", features("a real person", Channel.EMAIL))
        assert counting.texts == [first.normalized, other.normalized]
    finally:
        engine.close()


async def test_remembered_vectors_are_bounded_oldest_first() -> None:
    counting = _Counting()
    recent = RecentVectors(counting, size=2)
    expected = tuple(unit(v) for v in await HashingEmbedder().embed(["a", "b", "a"]))
    assert await recent.embed(["a", "b", "a"]) == expected
    assert counting.texts == ["a", "b"]  # a text asked twice in one call: embedded once
    await recent.embed(["a"])  # "a" used last: "b" is the oldest now
    await recent.embed(["c"])
    await recent.embed(["a", "b"])
    assert counting.texts == ["a", "b", "c", "b"]
