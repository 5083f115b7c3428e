"""Suite-wide settings: no real model requests, and no silent skips in CI."""

from __future__ import annotations

import os
from collections.abc import Generator

import pytest
from hypothesis import settings

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
