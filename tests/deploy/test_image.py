"""The image's inputs: requirements.lock still covers every runtime requirement of
pyproject.toml at a version it allows (else the image would lack what a new feature
imports), and the build context holds what the Dockerfile copies."""

from __future__ import annotations

import re

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from k8s.tools.lock import runtime_requirements
from tests.deploy.conftest import ROOT

# the image's interpreter and platform, for requirement markers
IMAGE = {"python_version": "3.12", "sys_platform": "linux", "platform_system": "Linux"}


def locked() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (ROOT / "requirements.lock").read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            pins[canonicalize_name(name)] = version
    return pins


def test_the_lock_covers_every_runtime_requirement() -> None:
    pins = locked()
    stale = []
    for text in runtime_requirements(ROOT / "pyproject.toml"):
        requirement = Requirement(text)
        if requirement.marker is not None and not requirement.marker.evaluate(IMAGE):
            continue
        version = pins.get(canonicalize_name(requirement.name))
        if version is None or not requirement.specifier.contains(version, prereleases=True):
            stale.append(f"{text} (locked: {version})")
    assert not stale, f"requirements.lock is stale, run `make lock`: {stale}"


def test_the_lock_pins_exact_versions() -> None:
    pins = locked()
    assert len(pins) > 50  # the whole resolved set, not just the direct requirements
    assert all(re.fullmatch(r"[0-9][0-9A-Za-z.+!-]*", v) for v in pins.values())


def test_the_build_context_holds_what_the_dockerfile_copies() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    ignore = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    assert "*" in ignore  # everything else stays out of the context (state, secrets)
    for line in dockerfile.splitlines():
        if line.startswith("COPY ") and "--from=" not in line:
            for source in line.split()[1:-1]:
                assert source in allowed, f"{line}: {source} is not in the build context"
                assert (ROOT / source).exists(), f"{line}: {source} does not exist"
