"""The numbers behind docs/discovery.md, computed from context/sample-tickets.json.

Run `python -m tests.discovery_stats` to print them as the document's table; the unit
test `tests/unit/test_discovery.py` fails when the document and the data disagree.
"""

from __future__ import annotations

import re
import statistics
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

from fte_core.language import detect_language
from fte_core.models import Channel
from fte_core.policy import PolicyEngine, load_rules
from fte_core.sentiment import sentiment_score
from service.evaluation import SampleTicket, load_tickets

ROOT = Path(__file__).resolve().parents[1]

_GREETING = re.compile(r"^\s*(hi|hello|hey|dear|good (morning|afternoon|evening))\b", re.I)
_SIGN_OFF = re.compile(r"^\W*(kind regards|regards|thanks|thank you|cheers|best|sincerely)\b", re.I)
_TEXTSPEAK = re.compile(r"\b(pls|plz|u|ur|thx|n|asap|im|wtf|rn|idk|lol|dont|cant|wont)\b", re.I)
_EMOJI = re.compile("[\U0001f300-\U0001faff\u2600-\u27bf]")
_SHOUT = re.compile(r"\b[A-Z]{4,}\b")


_POLICY: list[PolicyEngine] = []


def _tags(ticket: SampleTicket) -> tuple[str, ...]:
    if not _POLICY:
        _POLICY.append(PolicyEngine(load_rules(ROOT / "rules"), use_durable=False))
    return _POLICY[0].evaluate("input", ticket.text, ticket.channel).tags


def words(text: str) -> int:
    return len(text.split())


def share(items: Sequence[SampleTicket], test: Callable[[SampleTicket], bool]) -> float:
    return round(100 * sum(1 for t in items if test(t)) / len(items), 1) if items else 0.0


def median(values: Sequence[float]) -> float:
    return round(statistics.median(values), 1) if values else 0.0


def p90(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return (
        float(ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]) if ordered else 0.0
    )


def channel_stats(items: Sequence[SampleTicket]) -> dict[str, float | str]:
    scores = [sentiment_score(t.text) for t in items]
    escalated = [t for t in items if t.expected.action == "escalate"]
    reasons = Counter(t.expected.reason for t in escalated)
    sections = Counter(t.expected.section for t in items if t.expected.section)
    tags = Counter(tag for t in items for tag in _tags(t))
    angry = [sentiment_score(t.text) for t in items if t.expected.reason == "negative_sentiment"]
    return {
        "tickets": len(items),
        "median words": median([words(t.text) for t in items]),
        "p90 words": p90([words(t.text) for t in items]),
        "median characters": median([len(t.text) for t in items]),
        "% with a greeting": share(items, lambda t: bool(_GREETING.match(t.text))),
        "% with a sign-off": share(
            items, lambda t: any(_SIGN_OFF.match(line) for line in t.text.strip().splitlines()[-3:])
        ),
        "% with a subject": share(items, lambda t: bool(t.subject)),
        "% multi-line": share(items, lambda t: "\n" in t.text.strip()),
        "% starting lower-case": share(items, lambda t: t.text.strip()[:1].islower()),
        "% with text-speak": share(items, lambda t: bool(_TEXTSPEAK.search(t.text))),
        "% with emoji": share(items, lambda t: bool(_EMOJI.search(t.text))),
        "% shouting (a 4+ letter word in capitals)": share(
            items, lambda t: bool(_SHOUT.search(t.text.replace("CSV", "").replace("SAML", "")))
        ),
        "% with 2+ question marks": share(items, lambda t: t.text.count("?") >= 2),
        "% not in English": share(items, lambda t: detect_language(t.text) not in ("en", "")),
        "% expected to escalate": share(items, lambda t: t.expected.action == "escalate"),
        "escalation reasons": ", ".join(f"{r} {n}" for r, n in sorted(reasons.items())),
        "distinct KB sections expected": len(sections),
        "topic tags by the shipped rules": ", ".join(f"{k} {n}" for k, n in sorted(tags.items())),
        "mean sentiment": round(statistics.fmean(scores), 3) if scores else 0.0,
        "% sentiment below 0.35": share(items, lambda t: sentiment_score(t.text) < 0.35),
        "tickets below 0.15 not labelled negative_sentiment": sum(
            1
            for t in items
            if sentiment_score(t.text) < 0.15 and t.expected.reason != "negative_sentiment"
        ),
        "mean sentiment of negative_sentiment tickets": round(statistics.fmean(angry), 3)
        if angry
        else "none",
    }


def all_stats(
    path: Path = ROOT / "context" / "sample-tickets.json",
) -> dict[str, dict[str, float | str]]:
    tickets = load_tickets(path)
    return {c.value: channel_stats([t for t in tickets if t.channel is c]) for c in Channel}


def table(stats: dict[str, dict[str, float | str]]) -> str:
    names = list(stats)
    lines = ["| pattern | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for key in stats[names[0]]:
        lines.append(f"| {key} | " + " | ".join(str(stats[n][key]) for n in names) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(all_stats()))
