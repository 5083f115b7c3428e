"""Intake under load (SPEC 11): POST /api/v1/support/form at fixed rates against
`fte serve` on the embedded defaults, beside a bare Litestar hello-JSON endpoint measured
in the same run; the load generator is a separate process on loopback.

Target: p99 <= 25 ms at 500 req/s with 0 errors. FTE_BENCH_SECONDS (default 30) per rate.
Run: `.venv/bin/pytest -q -s tests/perf/test_intake_bench.py`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_serve import Served, free_port

ROOT = Path(__file__).resolve().parents[2]
SECONDS = float(os.environ.get("FTE_BENCH_SECONDS", "30"))
RATES = tuple(int(r) for r in os.environ.get("FTE_BENCH_RATES", "100,300,500").split(","))
pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def load(url: str, rate: int, kind: str) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-m", "tests.perf.loadgen", url, str(rate), str(SECONDS), kind],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=SECONDS * 4 + 60,
        check=True,
    )
    result: dict[str, float] = json.loads(done.stdout)
    return result


def test_intake_latency_at_fixed_rates(tmp_path: Path) -> None:
    port = free_port()
    hello = subprocess.Popen([sys.executable, "-m", "tests.perf.hello_app", str(port)], cwd=ROOT)
    # the worker beside the API embeds with the default model, as `make run` serves
    served = Served(tmp_path, free_port(), FTE_MODEL_DIR=str(ROOT / ".fte" / "models"))
    served.start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(f"http://127.0.0.1:{port}/hello", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        results: list[dict[str, float]] = []
        print(f"\nintake bench, {SECONDS:g} s per rate (p50 / p99 ms, errors)")
        for rate in RATES:
            base = load(f"http://127.0.0.1:{port}/hello", rate, "hello")
            form = load(f"{served.url}/api/v1/support/form", rate, "json")
            met = rate != 500 or form["p99_ms"] <= 25
            ratio = form["p99_ms"] / max(base["p99_ms"], 0.01)
            print(
                f"{rate:>4} req/s  hello {base['p50_ms']:.2f} / {base['p99_ms']:.2f}"
                f" ({base['errors']:g})  intake {form['p50_ms']:.2f} / {form['p99_ms']:.2f}"
                f" ({form['errors']:g})  p99 ratio {ratio:.1f}x"
                f"  target p99<=25ms@500: {'met' if met else 'MISSED'}"
            )
            results.append(form)
        assert all(r["errors"] == 0 for r in results), results
    finally:
        hello.terminate()
        hello.wait(timeout=10)
        served.stop()
