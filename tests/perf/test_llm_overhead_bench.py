"""litellm overhead against a local model server (SPEC 11: p99 <= 5 ms).

Overhead = LitellmResponder.answer latency minus the raw HTTP round trip (httpx, same
server, same payload, same run, calls interleaved so both see the same machine state).
The server runs in its own process so it does not compete with the client for the GIL.
Run with `make bench` (prints the figures).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from fte_core.llm import LitellmResponder
from fte_core.models import Channel, Passage
from fte_core.ports import AnswerRequest
from fte_core.prompts import build_messages

CALLS = 500
WARMUP = 30
TARGET_P99_MS = 5.0
SERVER = Path(__file__).resolve().parents[1] / "openai_server.py"
PASSAGE = Passage(
    id="product-docs/resetting-your-password/0",
    document="product-docs",
    section="Resetting your password",
    text="On the sign-in page click Forgot password?, enter the email address of your account.",
)
REQUEST = AnswerRequest(
    question="How do I reset my password?",
    subject="Password",
    channel=Channel.EMAIL,
    customer_name="Ana",
    passages=(PASSAGE,),
)
REPLY = f"On the sign-in page click Forgot password?.\nSOURCES: {PASSAGE.id}"


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, str(SERVER), "--reply", REPLY],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        yield proc.stdout.readline().strip()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def test_litellm_overhead_over_raw_http(base_url: str) -> None:
    responder = LitellmResponder("openai/test", api_base=base_url, api_key="x", num_retries=0)
    payload = {"model": "test", "messages": build_messages(REQUEST), "max_tokens": 700}
    raw_ms: list[float] = []
    llm_ms: list[float] = []
    async with httpx.AsyncClient(base_url=base_url) as client:
        for i in range(WARMUP + CALLS):
            started = time.perf_counter()
            response = await client.post("/chat/completions", json=payload)
            response.json()
            raw = (time.perf_counter() - started) * 1000
            started = time.perf_counter()
            answer = await responder.answer(REQUEST)
            full = (time.perf_counter() - started) * 1000
            if i >= WARMUP:
                raw_ms.append(raw)
                llm_ms.append(full)
    await responder.aclose()
    assert answer.passage_ids == (PASSAGE.id,)
    overhead = [b - a for a, b in zip(raw_ms, llm_ms, strict=True)]
    figures = {
        "raw_p50": _percentile(raw_ms, 0.50),
        "raw_p99": _percentile(raw_ms, 0.99),
        "litellm_p50": _percentile(llm_ms, 0.50),
        "litellm_p99": _percentile(llm_ms, 0.99),
        "overhead_p50": _percentile(llm_ms, 0.50) - _percentile(raw_ms, 0.50),
        "overhead_p99": _percentile(llm_ms, 0.99) - _percentile(raw_ms, 0.99),
        "paired_overhead_median": statistics.median(overhead),
    }
    print(f"\nlitellm overhead over raw HTTP, {CALLS} calls (ms):")
    for name, value in figures.items():
        print(f"  {name:24} {value:7.3f}")
    verdict = "met" if figures["overhead_p99"] <= TARGET_P99_MS else "NOT met"
    print(f"  target overhead p99 <= {TARGET_P99_MS} ms: {verdict} (figures, not a pass/fail)")
    assert len(llm_ms) == len(raw_ms) == CALLS
