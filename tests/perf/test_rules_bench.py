"""Policy engine latency on the shipped rules (SPEC 11: input + output p99 <= 100 us).

Run: .venv/bin/pytest -q -s tests/perf/test_rules_bench.py  (not part of `make test`)

10,000 messages from templates over the three channels (~20 % contain a trigger) and
10,000 agent drafts (~20 % quote an amount or promise something). Per message, timed
separately: normalisation, the text views, language detection, sentiment, the rules' text
matched in Python (phrases and patterns over every view, similarity to the exemplars),
features (all of these: target p99 <= 1 ms), input rules on precomputed facts, output
rules on precomputed facts (input + output target p99 <= 100 us: durable_rules sees only
booleans and scores, as ../shared/DURABLE_RULES.md prescribes, with the reference
evaluator checking it on every message), and input + output end to end (features
included: what the pipeline pays). Both evaluators run in the same
process: durable_rules and the pure-Python reference as the baseline. Figures are the
median over RUNS runs of each run's p50/p99, in microseconds.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import os
import random
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from fte_core.embedding import HashingEmbedder
from fte_core.language import detect_language
from fte_core.models import Channel
from fte_core.policy.engine import MessageFeatures, PolicyEngine, features
from fte_core.policy.loader import RuleSet, load_rules
from fte_core.policy.similarity import embed_now
from fte_core.sentiment import sentiment_score
from fte_core.text import normalize
from fte_core.textviews import text_views
from tests import strategies as s

RULES_DIR = Path(__file__).resolve().parents[2] / "rules"
# FTE_BENCH_MESSAGES / FTE_BENCH_RUNS shrink the run on a shared, loaded machine.
MESSAGES = int(os.environ.get("FTE_BENCH_MESSAGES", "10000"))
RUNS = int(os.environ.get("FTE_BENCH_RUNS", "5"))
# FTE_BENCH_CLOCK=cpu times each call in this thread's CPU time: on a machine shared with
# other jobs the wall-clock p99 is the scheduler's time slice, not the code.
CPU_CLOCK = os.environ.get("FTE_BENCH_CLOCK", "wall") == "cpu"
TRIGGER_SHARE = 0.2

TRIGGERS = (
    "I want a refund for last month",
    "how much does the business plan cost",
    "my lawyer will be in touch",
    "can I talk to a real person",
    "someone hacked my account",
    "this is the worst app ever, totally useless",
    "you charged me twice",
    "do you offer a discount for nonprofits",
    "pls call me",
    "we will file a complaint with the regulator",
)
RISKY_DRAFTS = (
    "The Business plan is $12 per seat.",
    "I have refunded 49.99 USD to your card.",
    "We guarantee this will be fixed by Friday.",
    "My instructions say I should not share that.",
    "I can give you a 20% discount.",
)


def _message(rng: random.Random) -> tuple[Channel, str]:
    channel = rng.choice(list(Channel))
    middle = rng.choice(TRIGGERS) if rng.random() < TRIGGER_SHARE else ""
    if channel is Channel.EMAIL:
        body = " ".join([*rng.sample(s.FORMAL_SENTENCES, 3), middle])
        return channel, f"Dear Tasklane team,\n\n{body}\n\nKind regards,\n{rng.choice(s.NAMES)}"
    if channel is Channel.WHATSAPP:
        bits = rng.sample(s.WHATSAPP_BITS, 3) + ([middle.lower()] if middle else [])
        rng.shuffle(bits)
        return channel, " ".join(bits) + rng.choice(("", " 🙏", "??", " 😡"))
    lines = rng.sample(s.WEB_SENTENCES, 3) + ([middle] if middle else [])
    return channel, f"Subject: {rng.choice(s.WEB_SUBJECTS)}\n" + "\n".join(lines)


def _draft(rng: random.Random) -> str:
    text = " ".join(rng.sample(s.BENIGN_DRAFT_SENTENCES, 3))
    return text + " " + rng.choice(RISKY_DRAFTS) if rng.random() < TRIGGER_SHARE else text


def _percentiles(samples: list[int]) -> tuple[float, float]:
    ordered = sorted(samples)
    p50 = ordered[len(ordered) // 2]
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return p50 / 1000, p99 / 1000


def _timed(fn: Callable[[int], object], count: int) -> list[int]:
    samples = []
    clock = time.thread_time_ns if CPU_CLOCK else time.perf_counter_ns
    for i in range(count):
        start = clock()
        fn(i)
        samples.append(clock() - start)
    return samples


def _measure(fn: Callable[[int], object], count: int) -> tuple[float, float]:
    """Median over RUNS of each run's (p50, p99); GC off while timing, as in a hot loop."""
    runs = []
    for _ in range(RUNS):
        gc.collect()
        gc.disable()
        try:
            runs.append(_percentiles(_timed(fn, count)))
        finally:
            gc.enable()
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)


@pytest.fixture(scope="module")
def shipped() -> RuleSet:
    return load_rules(RULES_DIR)


@pytest.fixture(scope="module")
def engines(shipped: RuleSet) -> Iterator[dict[str, PolicyEngine]]:
    pair = {
        "durable_rules": PolicyEngine(shipped),
        "reference": PolicyEngine(shipped, use_durable=False),
    }
    yield pair
    pair["durable_rules"].close()


def test_rules_bench(shipped: RuleSet, engines: dict[str, PolicyEngine]) -> None:
    rng = random.Random(20240607)
    messages = [_message(rng) for _ in range(MESSAGES)]
    drafts = [_draft(rng) for _ in range(MESSAGES)]
    inbound = [features(text, channel) for channel, text in messages]
    outbound = [
        features(d, messages[i][0], None if shipped.output.uses_sentiment else 0.5)
        for i, d in enumerate(drafts)
    ]
    # As in the pipeline: the message is embedded once, before the rules (similar_to)
    inbound, outbound = asyncio.run(_embedded(engines["durable_rules"], inbound, outbound))

    rows: list[tuple[str, float, float]] = []
    normalized = [normalize(text) for _, text in messages]
    rows.append(("normalise", *_measure(lambda i: normalize(messages[i][1]), MESSAGES)))
    rows.append(
        (
            "text views (joined, leet, numbers)",
            *_measure(lambda i: text_views(normalized[i]), MESSAGES),
        )
    )
    rows.append(("language", *_measure(lambda i: detect_language(messages[i][1]), MESSAGES)))
    rows.append(("sentiment", *_measure(lambda i: sentiment_score(messages[i][1]), MESSAGES)))
    engine = engines["durable_rules"]
    rows.append(
        ("text matching (input)", *_measure(lambda i: engine.facts("input", inbound[i]), MESSAGES))
    )

    def all_features(i: int) -> None:
        channel, text = messages[i]
        feats = engine.features_for("input", text, channel)
        engine.facts("input", dataclasses.replace(feats, embeddings=inbound[i].embeddings))

    rows.append(("features (all, input)", *_measure(all_features, MESSAGES)))
    hashing = HashingEmbedder()
    rows.append(
        (
            f"embedding ({hashing.name}, once/message)",
            *_measure(lambda i: embed_now(hashing, [normalized[i]]), MESSAGES),
        )
    )
    for name, engine in engines.items():
        rows.extend(_engine_rows(name, engine, messages, drafts, inbound, outbound))

    print(
        f"\npolicy engine, {len(shipped.rules)} rules "
        f"({len(shipped.input.rules)} input, {len(shipped.output.rules)} output), "
        f"{MESSAGES} messages x {RUNS} runs, median of per-run percentiles (us, "
        f"{'thread CPU time' if CPU_CLOCK else 'wall clock'})"
    )
    print(f"{'measure':<40}{'p50':>10}{'p99':>10}")
    for label, p50, p99 in rows:
        print(f"{label:<40}{p50:>10.1f}{p99:>10.1f}")
    by_label = {label: (p50, p99) for label, p50, p99 in rows}
    durable = by_label["durable_rules: input+output rules"]
    reference = by_label["reference: input+output rules"]
    print(
        "input+output rules, durable_rules / reference baseline (same run): "
        f"p50 x{durable[0] / reference[0]:.2f}, p99 x{durable[1] / reference[1]:.2f}; "
        "targets: rules p99 <= 100 us, features p99 <= 1000 us"
    )

    escalated = sum(
        engines["durable_rules"].evaluate_features("input", f).action == "escalate" for f in inbound
    )
    blocked = sum(
        engines["durable_rules"].evaluate_features("output", f).action == "block" for f in outbound
    )
    print(f"escalated {escalated}/{MESSAGES} messages, blocked {blocked}/{MESSAGES} drafts")
    assert len(shipped.rules) >= 30
    assert 0.1 * MESSAGES < escalated < 0.5 * MESSAGES
    assert 0.1 * MESSAGES < blocked < 0.5 * MESSAGES


async def _embedded(
    engine: PolicyEngine, inbound: list[MessageFeatures], outbound: list[MessageFeatures]
) -> tuple[list[MessageFeatures], list[MessageFeatures]]:
    return (
        [await engine.with_embedding("input", f) for f in inbound],
        [await engine.with_embedding("output", f) for f in outbound],
    )


def _engine_rows(
    name: str,
    engine: PolicyEngine,
    messages: list[tuple[Channel, str]],
    drafts: list[str],
    inbound: list[MessageFeatures],
    outbound: list[MessageFeatures],
) -> list[tuple[str, float, float]]:
    for i in range(0, MESSAGES, 97):  # both evaluators agree on the benchmark data too
        decision = engine.evaluate_features("input", inbound[i])
        assert decision.evaluator == name, decision.error

    def both(i: int) -> None:
        channel, text = messages[i]
        engine.evaluate("input", text, channel)
        engine.evaluate("output", drafts[i], channel)

    facts_in = [engine.facts("input", f) for f in inbound]
    facts_out = [engine.facts("output", f) for f in outbound]

    def rules_only(i: int) -> None:
        engine.evaluate_facts(facts_in[i])
        engine.evaluate_facts(facts_out[i])

    return [
        (f"{name}: input rules", *_measure(lambda i: engine.evaluate_facts(facts_in[i]), MESSAGES)),
        (
            f"{name}: output rules",
            *_measure(lambda i: engine.evaluate_facts(facts_out[i]), MESSAGES),
        ),
        (f"{name}: input+output rules", *_measure(rules_only, MESSAGES)),
        (f"{name}: input+output with features", *_measure(both, MESSAGES)),
    ]
