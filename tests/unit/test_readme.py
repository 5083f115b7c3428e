"""The README's developer example runs as written, in under 15 lines."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _example() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## For developers", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match is not None
    return match.group(1)


def test_the_example_is_short() -> None:
    assert len(_example().strip().splitlines()) <= 15


def test_the_example_handles_one_message(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(ROOT)
    namespace: dict[str, object] = {}
    exec(compile(_example(), "README.md", "exec"), namespace)
    main = namespace["main"]
    assert callable(main)
    asyncio.run(main())
    out = capsys.readouterr().out
    assert re.match(r"TKT-\d{6} answer \(", out)
    assert "Settings" in out or "password" in out.lower()


def test_public_surface_is_explicit() -> None:
    import fte_core
    import fte_core.testing

    assert sorted(fte_core.__all__) == fte_core.__all__
    for name in fte_core.__all__:
        assert hasattr(fte_core, name), name
    for name in fte_core.testing.__all__:
        assert hasattr(fte_core.testing, name), name
    assert {"InMemoryStore", "InMemoryKnowledgeBase", "InMemoryBus"} <= set(
        fte_core.testing.__all__
    )
