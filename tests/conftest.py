"""Suite-wide settings: no real model requests, and no silent skips in CI."""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from hypothesis import settings

if TYPE_CHECKING:
    from adapters.embedding.minilm import MiniLMEmbedder

# No per-example deadline: CI machines are shared, and timing is the benchmarks' job.
settings.register_profile("fte", deadline=None, print_blob=True)
settings.load_profile("fte")

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, None]:
    """With CI set, a test skipped for a missing component fails instead."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and os.environ.get("CI") and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped under CI (a required component is missing): {report.longrepr}"


@pytest.fixture(autouse=True)
def _no_real_model_requests() -> Generator[None, None, None]:
    from fte_core import llm

    previous = llm.ALLOW_MODEL_REQUESTS
    llm.ALLOW_MODEL_REQUESTS = False
    try:
        yield
    finally:
        llm.ALLOW_MODEL_REQUESTS = previous


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One Tansu broker per test run on a free loopback port (or FTE_TEST_KAFKA_BOOTSTRAP).
    Under CI a broker that cannot start fails the tests that need it."""
    external = os.environ.get("FTE_TEST_KAFKA_BOOTSTRAP")
    if external:
        yield external
        return
    from tests.kafka_broker import TansuBroker

    broker = TansuBroker(Path(tmp_path_factory.mktemp("tansu")) / "tansu.log")
    try:
        broker.start()
    except (RuntimeError, OSError, ImportError) as exc:
        if os.environ.get("CI"):
            pytest.fail(f"Kafka broker (Tansu) unavailable under CI: {exc}")
        pytest.skip(f"Kafka broker (Tansu) unavailable: {exc}")
    try:
        yield broker.bootstrap
    finally:
        broker.stop()


MODEL_DIR = Path(__file__).resolve().parents[1] / ".fte" / "models"


@pytest.fixture(scope="session")
def minilm() -> MiniLMEmbedder:
    """The real all-MiniLM-L6-v2, as `make install` (fte model install) left it."""
    from adapters.embedding.minilm import MiniLMEmbedder, runtime_available
    from adapters.embedding.minilm_build import installed

    if not (installed(MODEL_DIR) and runtime_available()):
        pytest.skip(f"MiniLM not installed in {MODEL_DIR}: run `make install`")
    return MiniLMEmbedder(MODEL_DIR)
