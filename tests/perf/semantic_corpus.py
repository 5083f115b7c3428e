"""A 100k-chunk corpus of real English prose, embedded once with the semantic model.

Random-word chunks (the hashing benchmark's corpus) mean nothing to a sentence model, so
its vectors would not look like real ones. These chunks are real prose: pairs of
consecutive sentences from the Python standard library's docstrings (thousands of
topics), interleaved with recombined sentences of context/product-docs.md (the product's
own neighbourhood, dense near the questions). Embedding 100k chunks takes a long while on
2 cores, so the vectors are cached under .fte/bench/ keyed by the model name and count.

Run directly to fill the cache ahead of the benchmark:
`.venv/bin/python -m tests.perf.semantic_corpus 100000`
"""

from __future__ import annotations

import importlib
import pkgutil
import random
import re
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from adapters.embedding.minilm import MiniLMEmbedder

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".fte" / "bench"
MODEL_DIR = ROOT / ".fte" / "models"
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
_SKIP = ("test", "idlelib", "tkinter", "turtle", "antigravity", "this", "__main__", "lib2to3")


def _stdlib_sentences() -> list[str]:
    found: list[str] = []
    names = sorted(m.name for m in pkgutil.iter_modules() if m.name in sys.stdlib_module_names)
    for name in names:
        if name.startswith(_SKIP) or name.startswith("_"):
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                module = importlib.import_module(name)
        except Exception:  # noqa: BLE001  (any stdlib module that will not import is skipped)
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # typing.io and friends warn when touched
            docs = [getattr(obj, "__doc__", None) for obj in [module, *vars(module).values()]]
        for doc in docs:
            if not isinstance(doc, str):
                continue
            for paragraph in re.split(r"\n\s*\n", doc):
                flat = " ".join(paragraph.split())
                found.extend(s for s in _SENTENCE.split(flat) if 40 <= len(s) <= 300)
    return list(dict.fromkeys(found))


def _doc_sentences() -> list[str]:
    text = (ROOT / "context" / "product-docs.md").read_text(encoding="utf-8")
    body = [line for line in text.splitlines() if line and not line.startswith("#")]
    return [s for line in body for s in _SENTENCE.split(line) if len(s) > 30]


def corpus(count: int, seed: int = 11) -> list[tuple[str, str]]:
    """(section, text) pairs; 70 % stdlib prose (a sentence and, mostly, a random
    other one), 30 % two random product sentences: nearly all distinct."""
    rng = random.Random(seed)
    prose = _stdlib_sentences()
    docs = _doc_sentences()
    chunks: list[tuple[str, str]] = []
    for i in range(count):
        if i % 10 < 7:
            first = rng.randrange(len(prose) - 1)
            second = first + 1 if rng.random() < 0.1 else rng.randrange(len(prose))
            text = f"{prose[first]} {prose[second]}"
            section = " ".join(prose[first].split()[:4])
        else:
            picked = rng.sample(docs, 2)
            text = " ".join(picked)
            section = " ".join(picked[0].split()[:4])
        chunks.append((section, text))
    return chunks


def vectors(embedder: MiniLMEmbedder, chunks: list[tuple[str, str]]) -> np.ndarray:
    """Cached float32 matrix, one row per chunk (section and text embedded as ingest does)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"{embedder.name}-{len(chunks)}.npy"
    if path.exists():
        return np.load(path)
    texts = [f"{section}\n{text}" for section, text in chunks]
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # less padding per batch
    out = np.zeros((len(texts), embedder.dimension), dtype=np.float32)
    started = time.perf_counter()
    step = 256
    for n, start in enumerate(range(0, len(order), step)):
        idx = order[start : start + step]
        out[idx] = np.asarray(embedder.embed_now([texts[i] for i in idx]), dtype=np.float32)
        if n % 40 == 0:
            done = start + len(idx)
            print(f"{done}/{len(texts)} in {time.perf_counter() - started:.0f} s", flush=True)
    np.save(path, out)
    return out


if __name__ == "__main__":
    size = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    model = MiniLMEmbedder(MODEL_DIR, threads=int(sys.argv[2]) if len(sys.argv) > 2 else 1)
    matrix = vectors(model, corpus(size))
    print(matrix.shape)
