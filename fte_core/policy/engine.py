"""The policy engine: features in Python, rule logic in durable_rules, never fail open.

Synchronous and pure: the decision is a function of (rule set, stage, text, channel).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import msgspec

from fte_core.errors import RuleError, RuleLimitError
from fte_core.language import ENGLISH, detect_language
from fte_core.models import Channel, Decision, Priority
from fte_core.policy.compiled import StageRules
from fte_core.policy.durable import DurableStage
from fte_core.policy.loader import RuleSet, load_rules
from fte_core.policy.reference import Facts, decide, failsafe, reference_fired
from fte_core.policy.similarity import (
    RecentVectors,
    SimilarityIndex,
    Vector,
    similarity_probes,
    unit,
)
from fte_core.ports import Embedder
from fte_core.sentiment import only_case_and_spacing, sentiment_score
from fte_core.text import normalize
from fte_core.textviews import View, decoded_view, text_views

log = logging.getLogger(__name__)

# The independent evaluator that judges every message beside durable_rules (the
# pure-Python one; a test may pass a fake that disagrees on purpose).
ReferenceEvaluator = Callable[[StageRules, Facts], set[str]]

NEUTRAL = 0.5


@dataclass(frozen=True, slots=True)
class MessageFeatures:
    normalized: str
    sentiment: float
    channel: Channel
    language: str = ENGLISH
    views: tuple[View, ...] = ()  # text_views(normalized); empty means just `normalized`
    # What the `similar_to` conditions compare (the best score over them counts): the
    # message's questions as retrieval embeds them (`similarity_probes`), a draft's own
    # words (fte_core.grounding.own_words); None means `normalized`, () nothing at all.
    probes: tuple[str, ...] | None = None
    # Their vectors, when the caller already has them (the pipeline embeds the questions
    # once, for retrieval and the rules alike): the rules then embed nothing.
    embeddings: tuple[Vector, ...] = ()
    # The model's labels for the customer's message (output stage; none when offline).
    model_flags: frozenset[str] = frozenset()


def features(
    text: str,
    channel: Channel,
    sentiment: float | None = None,
    *,
    numbers: bool = True,
    model_flags: Iterable[str] = (),
) -> MessageFeatures:
    """Step 5 of the pipeline: what every rule condition is evaluated on.

    The sentiment lexicon is English: a message in another language is scored neutral
    rather than misread word by word.
    """
    normalized = normalize(text)
    language = detect_language(text)
    views = _views(text, normalized, numbers)
    if sentiment is None:
        disguised = not only_case_and_spacing(text, normalized) or any(
            v.name in _UNDISGUISED for v in views
        )
        sentiment = sentiment_score(text, disguised=disguised) if language == ENGLISH else NEUTRAL
    return MessageFeatures(
        normalized=normalized,
        sentiment=sentiment,
        channel=channel,
        language=language,
        views=views,
        model_flags=frozenset(model_flags),
    )


def probe_texts(feats: MessageFeatures) -> tuple[str, ...]:
    return feats.probes if feats.probes is not None else (feats.normalized,)


# The views that undo a disguise: without one, and with normalisation changing nothing
# but case and spacing (look-alike letters are folded there), sentiment has nothing more
# to read.
_UNDISGUISED = frozenset({"joined", "leet"})


def _views(text: str, normalized: str, numbers: bool) -> tuple[View, ...]:
    views = text_views(normalized, numbers=numbers)
    decoded = decoded_view(text, normalize)
    return views if decoded is None else (*views, decoded)


def facts_for(
    stage: StageRules, feats: MessageFeatures, similarity: SimilarityIndex | None = None
) -> Facts:
    views = feats.views or (View("written", feats.normalized),)
    matched = stage.matcher.match(views)
    scores: tuple[int, ...] = ()
    if similarity is not None and stage.similarity:
        texts = probe_texts(feats)
        vectors = feats.embeddings or (similarity.vectors(texts) if texts else [])
        scores = similarity.best_scores(vectors)
    return Facts(
        atoms=tuple([v is not None for v in matched]),
        sentiment=round(feats.sentiment, 4),  # the grid both evaluators compare on
        channel=feats.channel,
        language=feats.language,
        views=matched,
        similarity=scores,
        model_flags=feats.model_flags,
    )


@dataclass(frozen=True, slots=True)
class StageFacts:
    """One message's facts for one stage of one rule-set version (atom numbers are that
    version's); `facts` is None when computing them failed, with the error."""

    stage: str
    version: str
    feats: MessageFeatures
    facts: Facts | None
    error: str = ""


def _stage_facts(
    stage: str, rules: RuleSet, similarity: _Similarity, feats: MessageFeatures
) -> StageFacts:
    try:
        facts = facts_for(rules.stage(stage), feats, similarity.stage(stage))
    except Exception as exc:  # noqa: BLE001 - a guardrail must never fail open
        log.error("policy features failed: %s", exc)
        return StageFacts(stage, rules.version, feats, None, f"features: {exc!r}")
    return StageFacts(stage, rules.version, feats, facts)


class _Similarity:
    """Both stages' exemplar vectors for one rule set (built when the rules load); `rules`
    is the set with the thresholds measured for the active embedder."""

    def __init__(self, rules: RuleSet, embedder: Embedder | None) -> None:
        self.input: SimilarityIndex | None = None
        self.output: SimilarityIndex | None = None
        self.embedder = embedder
        self.recent: RecentVectors | None = None
        self.rules = rules
        if not rules.uses_similarity:
            return
        if embedder is None:
            from fte_core.embedding import HashingEmbedder  # the offline default

            embedder = self.embedder = HashingEmbedder()
        self.recent = RecentVectors(embedder)
        rules = self.rules = rules.for_embedder(embedder.name)
        where = {r.rule.id: (r.file, r.line) for r in rules.rules}
        self.input = SimilarityIndex(rules.input, embedder, where)
        self.output = SimilarityIndex(rules.output, embedder, where)

    def stage(self, name: str) -> SimilarityIndex | None:
        return self.input if name == "input" else self.output


class _Compiled:
    """A rule set registered in durable_rules, one ruleset per stage."""

    def __init__(self, rules: RuleSet) -> None:
        self.rules = rules
        self.input = _stage(rules, rules.input)
        try:
            self.output = _stage(rules, rules.output)
        except Exception:
            self.input.close()
            raise

    def stage(self, name: str) -> DurableStage:
        return self.input if name == "input" else self.output

    def close(self) -> None:
        self.input.close()
        self.output.close()


def _stage(rules: RuleSet, stage: StageRules) -> DurableStage:
    """Register a stage; an engine refusal names the file and line of the rule at fault."""
    try:
        return DurableStage(stage)
    except RuleLimitError as exc:
        where = next((r for r in rules.rules if r.rule.id == exc.rule_id), None)
        if where is None:
            raise
        raise RuleLimitError(
            exc.detail, file=where.file, line=where.line, rule_id=exc.rule_id
        ) from exc


class PolicyEngine:
    """Evaluates messages against the current rule set; `reload` swaps it atomically.

    Defence in depth: durable_rules and the reference evaluator both judge every message.
    If they disagree, the message escalates (`policy_error`), the disagreement is counted
    (`disagreements`) and logged with both sets of fired rules.
    """

    def __init__(
        self,
        rules: RuleSet,
        *,
        use_durable: bool = True,
        embedder: Embedder | None = None,
        reference: ReferenceEvaluator = reference_fired,
    ) -> None:
        self.disagreements = 0
        self._reference = reference
        self._use_durable = use_durable
        self._embedder = embedder
        self._lock = threading.Lock()
        self._similarity = _Similarity(rules, embedder)
        rules = self._similarity.rules
        self._current = _Compiled(rules) if use_durable else None
        self._rules = rules

    @classmethod
    def from_directory(cls, directory: str, *, use_durable: bool = True) -> PolicyEngine:
        return cls(load_rules(directory), use_durable=use_durable)

    @property
    def rules(self) -> RuleSet:
        return self._rules

    @property
    def version(self) -> str:
        return self._rules.version

    @property
    def embedder_name(self) -> str | None:
        """The embedder the thresholds are calibrated for (None: no `similar_to` rule)."""
        with self._lock:
            embedder = self._similarity.embedder
        return embedder.name if embedder is not None else None

    def share_embeddings(
        self,
        feats: MessageFeatures,
        probes: Sequence[str],
        vectors: Sequence[Sequence[float]],
        embedder_name: str | None,
    ) -> MessageFeatures:
        """`probes` (`similarity_probes` of the message) with the vectors the caller
        computed for them, used only when they come from the embedder the thresholds were
        calibrated for; otherwise `with_embedding` embeds the probes itself."""
        if not probes:
            return feats
        same = embedder_name is not None and embedder_name == self.embedder_name
        if not same or len(vectors) != len(probes) or not all(vectors):
            return dataclasses.replace(feats, probes=tuple(probes), embeddings=())
        shared = tuple(unit(v) for v in vectors)
        return dataclasses.replace(feats, probes=tuple(probes), embeddings=shared)

    async def with_embedding(self, stage: str, feats: MessageFeatures) -> MessageFeatures:
        """The probes embedded once, before the rules run, when a `similar_to` rule of
        `stage` needs them: awaited here, so a model that computes in a worker thread
        (MiniLM) never blocks the event loop inside the rules' lock."""
        with self._lock:
            similarity = self._similarity
        if feats.embeddings or similarity.stage(stage) is None:
            return feats
        if not self._rules.stage(stage).similarity or similarity.recent is None:
            return feats
        texts = probe_texts(feats)
        if not texts:
            return feats
        return dataclasses.replace(feats, embeddings=await similarity.recent.embed(texts))

    def evaluate(
        self,
        stage: str,
        text: str,
        channel: Channel,
        *,
        sentiment: float | None = None,
        model_flags: Iterable[str] = (),
    ) -> Decision:
        feats = self.features_for(stage, text, channel, sentiment, model_flags=model_flags)
        return self.evaluate_features(stage, feats)

    def features_for(
        self,
        stage: str,
        text: str,
        channel: Channel,
        sentiment: float | None = None,
        *,
        model_flags: Iterable[str] = (),
        probes: Sequence[str] | None = None,
    ) -> MessageFeatures:
        """What `stage`'s rules read (sentiment and the numbers view only when they use
        them); the embedding is left to `with_embedding`. `probes`: what the similarity
        conditions compare, when not the message's questions (input) or the whole text."""
        stage_rules = self._rules.stage(stage)
        if sentiment is None and not stage_rules.uses_sentiment:
            sentiment = NEUTRAL
        numbers = stage_rules.matcher.wants_numbers
        feats = features(text, channel, sentiment, numbers=numbers, model_flags=model_flags)
        if probes is not None:
            return dataclasses.replace(feats, probes=tuple(normalize(p) for p in probes))
        if stage == "input" and stage_rules.similarity:
            return dataclasses.replace(feats, probes=similarity_probes(text))
        return feats

    def evaluate_features(self, stage: str, feats: MessageFeatures) -> Decision:
        return self.evaluate_facts(self.facts(stage, feats))

    def facts(self, stage: str, feats: MessageFeatures) -> StageFacts:
        """The text matched in Python (phrases, patterns, similarity) into the booleans and
        scores the rules read: the rules' own evaluation (`evaluate_facts`) then sees no
        text at all (../shared/DURABLE_RULES.md). Never raises: a failure is carried to
        `evaluate_facts`, which escalates."""
        with self._lock:
            rules, similarity = self._rules, self._similarity
        return _stage_facts(stage, rules, similarity, feats)

    def evaluate_facts(self, prepared: StageFacts) -> Decision:
        """Both evaluators on one message's facts. Facts computed against a rule set that
        has since been reloaded are recomputed: their atom numbers are the old set's."""
        with self._lock:
            rules, compiled, similarity = self._rules, self._current, self._similarity
        if prepared.version != rules.version:
            prepared = _stage_facts(prepared.stage, rules, similarity, prepared.feats)
        decision = self._decide(prepared, rules, compiled)
        flags = prepared.feats.model_flags
        if not flags:
            return decision
        return msgspec.structs.replace(decision, model_flags=tuple(sorted(flags)))

    def _decide(self, prepared: StageFacts, rules: RuleSet, compiled: _Compiled | None) -> Decision:
        stage = prepared.stage
        version, facts = rules.version, prepared.facts
        if facts is None:
            return failsafe(stage, version, prepared.error)
        stage_rules, views = rules.stage(stage), facts.views
        if compiled is None:
            fired = self._reference(stage_rules, facts)
            return decide(stage_rules, fired, version, "reference", views=views)
        try:
            fired = compiled.stage(stage).fired(facts)
        except Exception as engine_exc:  # noqa: BLE001 - the reference evaluator takes over
            log.error("durable_rules failed, using the reference evaluator: %s", engine_exc)
            try:
                fired = self._reference(stage_rules, facts)
            except Exception as ref_exc:  # noqa: BLE001 - both failed: escalate
                return failsafe(stage, version, f"{engine_exc!r}; {ref_exc!r}")
            return decide(stage_rules, fired, version, "reference", repr(engine_exc), views)
        try:
            expected = self._reference(stage_rules, facts)
        except Exception as ref_exc:  # noqa: BLE001 - the check itself failed: escalate
            return failsafe(stage, version, f"reference evaluator: {ref_exc!r}")
        if expected != fired:
            return self._disagreement(stage_rules, fired, expected, version, views)
        return decide(stage_rules, fired, version, "durable_rules", views=views)

    def _disagreement(
        self,
        stage: StageRules,
        fired: set[str],
        expected: set[str],
        version: str,
        views: tuple[str | None, ...],
    ) -> Decision:
        """The two evaluators differ: trust neither, escalate with everything either fired."""
        self.disagreements += 1
        error = f"durable_rules fired {sorted(fired)}, reference fired {sorted(expected)}"
        log.error("policy evaluators disagree (%s): %s", stage.stage, error)
        merged = decide(stage, fired | expected, version, "durable_rules", error, views)
        stop = "escalate" if stage.stage == "input" else "block"
        return msgspec.structs.replace(
            merged,
            action=stop,
            reasons=("policy_error", *merged.reasons),
            urgency=Priority.HIGH if merged.urgency is None else merged.urgency,
        )

    def reload(self, rules: RuleSet) -> None:
        """All or nothing: if the new set fails to register, the old one keeps serving."""
        similarity = _Similarity(rules, self._embedder)
        rules = similarity.rules
        new = _Compiled(rules) if self._use_durable else None
        with self._lock:
            old, self._current, self._rules = self._current, new, rules
            self._similarity = similarity
        if old is not None:
            old.close()

    def reload_directory(self, directory: str) -> bool:
        """Reload from files; on any error keep serving the current set and re-raise."""
        try:
            rules = load_rules(directory)
            _Similarity(rules, self._embedder)  # calibrated for this embedder?
        except RuleError:
            log.exception("rule reload failed; still serving version %s", self.version)
            raise
        if rules.version == self.version:
            return False
        self.reload(rules)
        log.info("rules reloaded: version %s", rules.version)
        return True

    def close(self) -> None:
        if self._current is not None:
            self._current.close()
            self._current = None
