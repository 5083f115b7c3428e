"""A paced HTTP load generator, run as its own process: POSTs at a fixed rate for a fixed
time, prints one JSON line with latency percentiles and error counts.

python -m tests.perf.loadgen URL RATE SECONDS [json|hello]
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import httpx

FORM = {
    "name": "Load Test",
    "email": "load{n}@example.com",
    "subject": "Password help",
    "category": "account",
    "message": "How do I reset my password? I cannot sign in.",
}


TIMEOUT = 10.0


async def run(url: str, rate: float, seconds: float, kind: str) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx.AsyncClient(timeout=TIMEOUT, limits=limits) as client:

        async def one(n: int) -> None:
            nonlocal errors
            started = time.perf_counter()
            try:
                # one deadline for the whole request (httpx's applies per phase), so a
                # saturated server shows up as errors, not as a load run that never ends
                async with asyncio.timeout(TIMEOUT):
                    if kind == "hello":
                        response = await client.get(url)
                    else:
                        body = {**FORM, "email": FORM["email"].format(n=n)}
                        response = await client.post(url, json=body)
                ok = response.status_code in (200, 201)
            except (httpx.HTTPError, TimeoutError):
                ok = False
            latencies.append((time.perf_counter() - started) * 1000)
            errors += 0 if ok else 1

        tasks = []
        start = time.perf_counter()
        total = int(rate * seconds)
        for n in range(total):
            delay = start + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(n)))
        await asyncio.gather(*tasks)
    ordered = sorted(latencies)

    def pct(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)

    return {"rate": rate, "sent": total, "errors": errors, "p50_ms": pct(0.5), "p99_ms": pct(0.99)}


if __name__ == "__main__":
    url, rate, seconds = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
    kind = sys.argv[4] if len(sys.argv) > 4 else "json"
    print(json.dumps(asyncio.run(run(url, rate, seconds, kind))))
