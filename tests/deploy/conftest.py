"""The kustomize overlays, rendered once per test run by the pinned kubectl of
`make deploy-check` (.venv-deploy), or one on PATH. Under CI a missing kubectl fails."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
OVERLAYS = ("dev", "production")
Manifest = dict[str, Any]


def kubectl() -> str | None:
    pinned = ROOT / ".venv-deploy" / "bin" / "kubectl"
    return str(pinned) if pinned.exists() else shutil.which("kubectl")


def render(overlay: str) -> list[Manifest]:
    binary = kubectl()
    if binary is None:
        pytest.skip("kubectl not found: run `make deploy-check` (it installs the pinned one)")
    result = subprocess.run(
        [binary, "kustomize", str(ROOT / "k8s" / "overlays" / overlay)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="session")
def rendered() -> dict[str, list[Manifest]]:
    return {overlay: render(overlay) for overlay in OVERLAYS}
