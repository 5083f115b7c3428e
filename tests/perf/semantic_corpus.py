"""A 100k-chunk corpus of real English prose, embedded once with the semantic model.

Random-word chunks (the hashing benchmark's corpus) mean nothing to a sentence model, so
its vectors would not look like real ones. These chunks are real sentences: docstring
sentences of the Python files installed in the project's environment (the standard
library and every dependency, read with `ast`, nothing imported: thousands of topics),
and, for one chunk in ten, two recombined sentences of context/product-docs.md (the
product's own neighbourhood, dense near the customers' questions). Short chunks keep the
one-off embedding affordable on 2 cores (~100k sentences); search cost does not depend
on chunk length. The vectors are cached under .fte/bench/, keyed by model and count, and
can be computed by several workers at once:

    .venv/bin/python -m tests.perf.semantic_corpus 100000 --worker 0 --of 2 &
    .venv/bin/python -m tests.perf.semantic_corpus 100000 --worker 1 --of 2
"""

from __future__ import annotations

import argparse
import ast
import json
import random
import re
import sys
import sysconfig
import time
import warnings
from pathlib import Path

import numpy as np

from adapters.embedding.minilm import MiniLMEmbedder

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".fte" / "bench"
MODEL_DIR = ROOT / ".fte" / "models"
BATCH = 256
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
_PROSE = re.compile(r"^[A-Z][a-z]+ [a-z]+ [a-z]+[^>{}\[\]=|]*[.!?]$")


def _docstrings(path: Path) -> list[str]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(path.read_text(encoding="utf-8", errors="ignore"))
    except (SyntaxError, ValueError, RecursionError):
        return []
    nodes = [tree, *(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.ClassDef))]
    found = []
    for node in nodes:
        doc = ast.get_docstring(node)
        if doc:
            found.append(doc)
    return found


def prose_sentences() -> list[str]:
    """Distinct prose-looking docstring sentences (40-200 characters), sorted."""
    roots = {sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["purelib"]}
    seen: set[str] = set()
    for root in sorted(roots):
        for path in sorted(Path(root).rglob("*.py")):
            if "test" in path.parts or "tests" in path.parts:
                continue
            for doc in _docstrings(path):
                for paragraph in re.split(r"\n\s*\n", doc):
                    for s in _SENTENCE.split(" ".join(paragraph.split())):
                        if 40 <= len(s) <= 200 and _PROSE.match(s):
                            seen.add(s)
    return sorted(seen)


def _doc_sentences() -> list[str]:
    text = (ROOT / "context" / "product-docs.md").read_text(encoding="utf-8")
    body = [line for line in text.splitlines() if line and not line.startswith("#")]
    return [s for line in body for s in _SENTENCE.split(line) if len(s) > 30]


def corpus(count: int, seed: int = 11) -> list[tuple[str, str]]:
    """(section, text) pairs: 90 % distinct docstring sentences, 10 % two product
    sentences; the section is the text's first four words. Cached (reading every
    installed file takes minutes), so the vectors' cache always matches its texts."""
    path = CACHE / f"corpus-{count}-{seed}.json"
    full = CACHE / f"corpus-100000-{seed}.json"
    for cached in (path, full):
        if cached.exists() and (cached == path or count <= 100_000):
            pairs = json.loads(cached.read_text(encoding="utf-8"))
            return [(a, b) for a, b in pairs[:count]]
    chunks = _build(count, seed)
    CACHE.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(chunks), encoding="utf-8")
    return chunks


def _build(count: int, seed: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    prose = prose_sentences()
    rng.shuffle(prose)
    docs = _doc_sentences()
    chunks: list[tuple[str, str]] = []
    used = 0
    for i in range(count):
        if i % 10 == 9 or used >= len(prose):
            text = " ".join(rng.sample(docs, 2))
        else:
            text = prose[used]
            used += 1
        chunks.append((" ".join(text.split()[:4]), text))
    return chunks


def _texts(chunks: list[tuple[str, str]]) -> list[str]:
    return [f"{section}\n{text}" for section, text in chunks]


def _cache(embedder: MiniLMEmbedder, count: int) -> Path:
    return CACHE / f"{embedder.name}-{count}.npy"


def vectors(embedder: MiniLMEmbedder, chunks: list[tuple[str, str]]) -> np.ndarray:
    """The cached matrix (one row per chunk, embedded as ingest embeds a chunk), from
    the finished cache or the workers' parts; computed here for whatever is missing."""
    path = _cache(embedder, len(chunks))
    if path.exists():
        return np.load(path)
    embed_part(embedder, chunks, worker=0, workers=1)
    texts = _texts(chunks)
    out = np.zeros((len(texts), embedder.dimension), dtype=np.float32)
    for part in sorted((CACHE / "parts").glob(f"{path.stem}-*.npy")):
        block = np.load(part)
        out[block[:, 0].astype(np.int64)] = block[:, 1:]
    if np.any(np.abs(np.linalg.norm(out, axis=1) - 1.0) > 1e-3):
        raise RuntimeError(f"incomplete vectors for {path}")
    np.save(path, out)
    return out


def embedded_so_far(
    embedder: MiniLMEmbedder, chunks: list[tuple[str, str]]
) -> tuple[list[tuple[str, str]], np.ndarray]:
    """The chunks whose vectors the workers have finished, with those vectors (the
    shortest texts first: batches run in length order)."""
    stem = _cache(embedder, len(chunks)).stem
    blocks = [np.load(part) for part in sorted((CACHE / "parts").glob(f"{stem}-*.npy"))]
    table = np.concatenate(blocks) if blocks else np.zeros((0, embedder.dimension + 1))
    ids = table[:, 0].astype(np.int64)
    return [chunks[i] for i in ids], table[:, 1:].astype(np.float32)


def embed_part(
    embedder: MiniLMEmbedder, chunks: list[tuple[str, str]], worker: int, workers: int
) -> None:
    """Embed batches worker, worker + workers, ... (shortest texts first), each saved as
    a part file, skipping parts already on disk."""
    texts = _texts(chunks)
    stem = _cache(embedder, len(chunks)).stem
    parts = CACHE / "parts"
    parts.mkdir(parents=True, exist_ok=True)
    order = sorted(range(len(texts)), key=lambda i: (len(texts[i]), i))
    started = time.perf_counter()
    for n, start in enumerate(range(0, len(order), BATCH)):
        target = parts / f"{stem}-{n:05d}.npy"
        if n % workers != worker or target.exists():
            continue
        idx = order[start : start + BATCH]
        block = np.asarray(embedder.embed_now([texts[i] for i in idx]), dtype=np.float32)
        ids = np.asarray(idx, dtype=np.float32)[:, None]  # exact below 2**24
        np.save(target.with_suffix(".tmp.npy"), np.concatenate([ids, block], axis=1))
        target.with_suffix(".tmp.npy").rename(target)
        if n % 20 == worker:
            done = start + len(idx)
            print(f"batch {n}: {done} of {len(texts)}, {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("count", type=int, nargs="?", default=100_000)
    parser.add_argument("--worker", type=int, default=0)
    parser.add_argument("--of", type=int, default=1)
    args = parser.parse_args()
    model = MiniLMEmbedder(MODEL_DIR, threads=1)
    chunks = corpus(args.count)
    embed_part(model, chunks, args.worker, args.of)
    if args.of == 1:
        print(vectors(model, chunks).shape)
    sys.exit(0)
