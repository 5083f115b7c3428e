"""A paced HTTP load generator, run as its own process: sends requests at a fixed rate for a
fixed time (open loop), prints one JSON line with latency percentiles and error counts.

python -m tests.perf.loadgen URL RATE SECONDS [json|hello]

Why not httpx: at 300 req/s an httpx client spends most of a core on itself, and on a
2-core machine the measuring tool then starves the server it measures (the first version
of this benchmark reported seconds of latency for a hello-world endpoint). This client
writes pre-built HTTP/1.1 requests on keep-alive connections and parses only the status
line and the body length: tens of microseconds per request. Latency is measured from the
moment a request was *scheduled*, so a stalled server is not hidden by the client waiting
for a free connection (coordinated omission).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from urllib.parse import urlsplit

import uvloop

TIMEOUT = 10.0
MAX_CONNECTIONS = 256
FORM = {
    "name": "Load Test",
    "email": "load{n}@example.com",
    "subject": "Password help",
    "category": "account",
    "message": "How do I reset my password? I cannot sign in.",
}


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def exchange(self, request: bytes) -> int:
        """Send one request, read its whole response; the status code."""
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        lower = head.lower()
        at = lower.find(b"\r\ncontent-length:")
        if at >= 0:
            end = lower.index(b"\r\n", at + 2)
            await self.reader.readexactly(int(lower[at + 17 : end]))
        elif b"\r\ntransfer-encoding: chunked" in lower:
            await self._read_chunked()
        if b"\r\nconnection: close" in lower:
            raise ConnectionResetError("server closed the connection")
        return status

    async def _read_chunked(self) -> None:
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).strip(), 16)
            await self.reader.readexactly(size + 2)
            if size == 0:
                return

    def close(self) -> None:
        self.writer.close()


def build_request(host: str, path: str, kind: str, n: int) -> bytes:
    if kind == "hello":
        return f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    body = json.dumps({**FORM, "email": FORM["email"].format(n=n)}).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def run(url: str, rate: float, seconds: float, kind: str) -> dict[str, float]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    idle: list[Connection] = []
    opened = 0
    latencies: list[float] = []
    errors = 0
    slots = asyncio.Semaphore(MAX_CONNECTIONS)

    async def one(n: int, scheduled: float) -> None:
        nonlocal errors, opened
        # from the later of the schedule and this task's start: a client timer firing
        # late is not the server's latency, a wait for a free connection is
        scheduled = max(scheduled, time.perf_counter())
        request = build_request(f"{host}:{port}", parts.path, kind, n)
        ok = False
        try:
            async with asyncio.timeout(TIMEOUT), slots:
                conn = idle.pop() if idle else None
                while conn is not None and conn.reader.at_eof():  # closed by the server
                    conn.close()
                    conn = idle.pop() if idle else None
                if conn is None:
                    opened += 1
                    conn = Connection(*await asyncio.open_connection(host, port))
                try:
                    ok = await conn.exchange(request) in (200, 201)
                except BaseException:
                    conn.close()
                    raise
                idle.append(conn)
        except (OSError, asyncio.IncompleteReadError, ValueError, TimeoutError):
            ok = False
        latencies.append((time.perf_counter() - scheduled) * 1000)
        errors += 0 if ok else 1

    tasks = []
    start = time.perf_counter()
    total = int(rate * seconds)
    for n in range(total):
        scheduled = start + n / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(n, scheduled)))
    await asyncio.gather(*tasks)
    for conn in idle:
        conn.close()
    ordered = sorted(latencies)

    def pct(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)

    return {
        "rate": rate,
        "sent": total,
        "errors": errors,
        "connections": opened,
        "p50_ms": pct(0.5),
        "p99_ms": pct(0.99),
        "max_ms": round(ordered[-1], 2),
    }


def main() -> None:
    url, rate, seconds = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
    kind = sys.argv[4] if len(sys.argv) > 4 else "json"
    print(json.dumps(uvloop.run(run(url, rate, seconds, kind))))


if __name__ == "__main__":
    main()
