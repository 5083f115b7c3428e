"""k8s/base/prometheus-rules.yaml: a well-formed PrometheusRule whose every metric is one
the service exports on /metrics (names read from a running app's exposition)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from litestar import Litestar
from litestar.testing import AsyncTestClient

from fte_core.models import Channel, InboundMessage
from tests.e2e.conftest import ROOT

RULES = ROOT / "k8s" / "base" / "prometheus-rules.yaml"
PROMQL_WORDS = {"max", "by", "on", "and", "group_left", "increase", "time", "sum"}


def load() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(Path(RULES).read_text(encoding="utf-8"))
    return document


def test_the_rule_object_is_what_the_manifests_expect() -> None:
    doc = load()
    assert doc["apiVersion"] == "monitoring.coreos.com/v1"
    assert doc["kind"] == "PrometheusRule"
    assert doc["metadata"]["name"] == "fte-alerts"
    assert "namespace" not in doc["metadata"]  # the kustomization sets it
    rules = [r for group in doc["spec"]["groups"] for r in group["rules"]]
    names = [r["alert"] for r in rules]
    assert len(names) == len(set(names))
    assert {
        "FteReplyLatencyHigh",
        "FteEscalationRateHigh",
        "FteDeadLetters",
        "FteChannelIdle",
        "FtePolicyDisagreement",
    } <= set(names)
    for rule in rules:
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        assert rule["expr"].count("(") == rule["expr"].count(")"), rule["alert"]


def metrics_in(expr: str) -> set[str]:
    without_strings = re.sub(r'"[^"]*"', "", expr)
    without_ranges = re.sub(r"\[[^\]]*\]", "", without_strings)
    words = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", without_ranges))
    unknown = {w for w in words if not w.startswith("fte_")} - PROMQL_WORDS - {"channel", "topic"}
    assert unknown == set(), f"a word in {expr!r} is neither fte_ metric nor known PromQL"
    return {w for w in words if w.startswith("fte_")}


def exported(exposition: str) -> set[str]:
    names: set[str] = set()
    for line in exposition.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            names.add(name)
            if kind == "counter":
                names.add(f"{name}_total")
            if kind == "histogram":
                names.update(f"{name}{s}" for s in ("_bucket", "_sum", "_count"))
        elif line and not line.startswith("#"):
            names.add(line.split("{")[0].split(" ")[0])
    return names


async def test_every_metric_the_rules_use_is_exported(client: AsyncTestClient[Litestar]) -> None:
    runtime = client.app.state.service.runtime
    await runtime.agent.handle(
        InboundMessage(
            channel=Channel.WEB_FORM,
            provider_message_id="rules-1",
            text="How do I export my tasks to CSV?",
            received_at=datetime.now(UTC),
            sender_email="ana@example.com",
            subject="Export",
        )
    )
    await client.app.state.monitor.refresh()
    names = exported((await client.get("/metrics")).text)
    used = {
        metric
        for group in load()["spec"]["groups"]
        for rule in group["rules"]
        for metric in metrics_in(rule["expr"])
    }
    assert used, "no metric found in the rules"
    assert used - names == set()
