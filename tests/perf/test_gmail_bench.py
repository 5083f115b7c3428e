"""The Gmail channel's per-push costs (not part of `make test`).

Run: .venv/bin/pytest -q -s tests/perf/test_gmail_bench.py

- MIME: `parse_email` + `to_inbound` (body choice, HTML to text, charsets, attachments,
  Authentication-Results, robot checks) on the realistic payloads of the tests, against
  the baseline of the standard library alone parsing the same bytes and reading the
  preferred body (`BytesParser(policy=default)` + `get_body().get_content()`).
- Push token: `PushVerifier.verify` with cached certificates (what every push pays once
  the certificates are fetched), against the baseline of google-auth's `jwt.decode` on
  the same token and certificates (the RSA signature check itself).
- Sync: a push with 10 new messages through `MailboxSync.on_push` into the in-memory
  store (Gmail's answers canned by HttpMockSequence, so Google's own latency is excluded).

Figures: medians over RUNS runs of each run's p50/p99, microseconds, with the ratio to the
baseline measured in the same run.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import time
from collections.abc import Callable
from email import policy
from email.parser import BytesParser
from pathlib import Path

from google.auth import jwt

from adapters.channels.gmail.api import GmailMessage
from adapters.channels.gmail.envelope import PushNotification
from adapters.channels.gmail.inbound import to_inbound
from adapters.channels.gmail.push import PushVerifier
from adapters.channels.gmail.sync import MailboxSync
from fte_core.context import load_context
from fte_core.offline import OfflineResponder
from fte_core.pipeline import Agent
from fte_core.policy import PolicyEngine, load_rules
from fte_core.testing.bus import InMemoryBus
from fte_core.testing.knowledge import InMemoryKnowledgeBase
from fte_core.testing.mailboxes import InMemoryMailboxes
from fte_core.testing.store import InMemoryStore
from tests import gmail_payloads as p
from tests.pubsub_tokens import AUDIENCE, CertsServer, SigningKey

ROOT = Path(__file__).resolve().parents[2]
RUNS = 5
PER_RUN = 1_000
PAYLOADS = (
    p.MULTIPART_ALTERNATIVE,
    p.HTML_ONLY,
    p.REPLY_WITH_HISTORY,
    p.LATIN1,
    p.ATTACHMENT,
    p.SPOOFED,
)


def _timings(fn: Callable[[int], object], count: int) -> tuple[float, float]:
    samples = []
    gc.collect()
    for i in range(count):
        started = time.perf_counter_ns()
        fn(i)
        samples.append((time.perf_counter_ns() - started) / 1000)
    samples.sort()
    return samples[len(samples) // 2], samples[int(len(samples) * 0.99)]


def _report(name: str, ours: list[tuple[float, float]], base: list[tuple[float, float]]) -> None:
    p50 = statistics.median(r[0] for r in ours)
    p99 = statistics.median(r[1] for r in ours)
    b50 = statistics.median(r[0] for r in base)
    b99 = statistics.median(r[1] for r in base)
    print(
        f"\n{name}: p50 {p50:.0f} us, p99 {p99:.0f} us; baseline p50 {b50:.0f} us,"
        f" p99 {b99:.0f} us; ratio p50 {p50 / b50:.2f}x"
    )


def test_mime_parsing_cost() -> None:
    messages = [
        GmailMessage(id=f"m{i}", thread_id="t", raw=p.b64url(raw)) for i, raw in enumerate(PAYLOADS)
    ]
    parser = BytesParser(policy=policy.default)

    def ours(i: int) -> object:
        return to_inbound(messages[i % len(messages)], p.MAILBOX)

    def baseline(i: int) -> object:
        raw = PAYLOADS[i % len(PAYLOADS)]
        body = parser.parsebytes(raw).get_body(preferencelist=("plain", "html"))
        return body.get_content() if body is not None else ""

    mine, base = [], []
    for _ in range(RUNS):
        mine.append(_timings(ours, PER_RUN))
        base.append(_timings(baseline, PER_RUN))
    _report("MIME to InboundMessage", mine, base)
    assert all(isinstance(ours(i), object) for i in range(len(PAYLOADS)))


def test_push_token_verification_cost() -> None:
    key = SigningKey("bench")
    token = key.token()
    with CertsServer({key.kid: key.cert_pem}).running() as certs:
        verifier = PushVerifier(AUDIENCE, certs_url=certs.url)
        header = f"Bearer {token}"
        asyncio.run(verifier.verify(header))  # certificates fetched once, then cached
        mapping = {key.kid: key.cert_pem}

        async def verify_many(count: int) -> tuple[float, float]:
            samples = []
            for _ in range(count):
                started = time.perf_counter_ns()
                await verifier.verify(header)
                samples.append((time.perf_counter_ns() - started) / 1000)
            samples.sort()
            return samples[len(samples) // 2], samples[int(len(samples) * 0.99)]

        def baseline(i: int) -> object:
            return jwt.decode(token, certs=mapping, audience=AUDIENCE)

        mine, base = [], []
        for _ in range(RUNS):
            mine.append(asyncio.run(verify_many(PER_RUN // 4)))
            base.append(_timings(baseline, PER_RUN // 4))
        assert certs.requests == 1
    _report("push token verify (cached certs)", mine, base)


def test_sync_of_a_push_with_ten_messages() -> None:
    policy_engine = PolicyEngine(load_rules(ROOT / "rules"))
    context = load_context(ROOT / "context")
    client, http = p.mock_client([])  # one client, as the service keeps (built once)

    async def one_run(run: int) -> float:
        store = InMemoryStore()
        agent = Agent(
            policy=policy_engine,
            context=context,
            store=store,
            knowledge=InMemoryKnowledgeBase(),
            responder=OfflineResponder(),
            bus=InMemoryBus(),
        )
        state = InMemoryMailboxes()
        await state.advance(p.MAILBOX, 1000)
        ids = [(f"r{run}m{i}", f"t{i}") for i in range(10)]
        responses = [p.ok(p.history_json(ids, 1010))] + [
            p.ok(p.message_json(m, PAYLOADS[i % len(PAYLOADS)], thread_id=t))
            for i, (m, t) in enumerate(ids)
        ]
        http._iterable.extend(responses)  # the canned answers for this run
        sync = MailboxSync(client, state, agent.submit)
        started = time.perf_counter()
        report = await sync.on_push(PushNotification(mailbox=p.MAILBOX, history_id=1010))
        elapsed = (time.perf_counter() - started) * 1000
        assert len(report.stored) == 10
        return elapsed

    asyncio.run(one_run(-1))  # the first call builds the Gmail service from its discovery doc
    runs = [asyncio.run(one_run(r)) for r in range(RUNS * 4)]
    policy_engine.close()
    print(
        f"\nsync of one push with 10 messages (canned Gmail HTTP, in-memory store):"
        f" median {statistics.median(runs):.1f} ms, max {max(runs):.1f} ms over {len(runs)} runs"
    )
