"""Settings from the environment (and mounted secret files): the only place that reads them."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import msgspec

from fte_core.errors import ConfigError

Storage = Literal["auto", "memory", "postgres"]
EmbedderKind = Literal["minilm", "hashing"]


class Settings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    data_dir: str = ".fte"
    rules_dir: str = "rules"
    context_dir: str = "context"
    storage: Storage = "auto"  # auto: FTE_DATABASE_URL if set, else embedded PostgreSQL
    database_url: str | None = None
    llm_model: str | None = None  # any litellm model id; unset: the offline responder
    llm_fallbacks: tuple[str, ...] = ()
    llm_api_base: str | None = None
    llm_api_key: str | None = msgspec.field(default=None)
    llm_timeout: float = 20.0
    embedding_model: str | None = None  # any litellm embedding model; replaces `embedder`
    # the local default: MiniLM (installed by `fte model install`), or the lexical hashing
    # embedder (no model at all); MiniLM not installed falls back to hashing, with a warning
    embedder: EmbedderKind = "minilm"
    model_dir: str | None = None  # default <data_dir>/models
    embedding_dimension: int = 384
    embedding_api_base: str | None = None
    thread_window_hours: float = 24.0
    kb_threshold: float | None = None  # no-match probability cut (default: calibrated 0.5)

    @property
    def models_path(self) -> str:
        return self.model_dir or f"{self.data_dir}/models"

    def __repr__(self) -> str:  # never print a secret
        return f"Settings(data_dir={self.data_dir!r}, storage={self.storage!r}, ...)"


_ENV = {
    "FTE_DATA_DIR": "data_dir",
    "FTE_RULES_DIR": "rules_dir",
    "FTE_CONTEXT_DIR": "context_dir",
    "FTE_STORAGE": "storage",
    "FTE_DATABASE_URL": "database_url",
    "FTE_LLM_MODEL": "llm_model",
    "FTE_LLM_FALLBACKS": "llm_fallbacks",
    "FTE_LLM_API_BASE": "llm_api_base",
    "FTE_LLM_API_KEY": "llm_api_key",
    "FTE_LLM_TIMEOUT": "llm_timeout",
    "FTE_EMBEDDING_MODEL": "embedding_model",
    "FTE_EMBEDDER": "embedder",
    "FTE_MODEL_DIR": "model_dir",
    "FTE_EMBEDDING_DIMENSION": "embedding_dimension",
    "FTE_EMBEDDING_API_BASE": "embedding_api_base",
    "FTE_THREAD_WINDOW_HOURS": "thread_window_hours",
    "FTE_KB_THRESHOLD": "kb_threshold",
}
_SECRET_FILES = {"FTE_DATABASE_URL_FILE": "database_url", "FTE_LLM_API_KEY_FILE": "llm_api_key"}


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Decode FTE_* variables; `NAME_FILE` variables point at mounted secrets."""
    env = os.environ if environ is None else environ
    raw: dict[str, object] = {}
    for var, name in _ENV.items():
        value = env.get(var)
        if value is None or value == "":
            continue
        raw[name] = (
            tuple(v.strip() for v in value.split(",") if v.strip())
            if (name == "llm_fallbacks")
            else value
        )
    for var, name in _SECRET_FILES.items():
        path = env.get(var)
        if path:
            try:
                raw[name] = Path(path).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(f"{var}: cannot read the secret file: {exc.strerror}") from exc
    try:
        return msgspec.convert(raw, Settings, strict=False)
    except msgspec.ValidationError as exc:
        field = str(exc).rsplit("`$.", 1)[-1].rstrip("`")
        var = next((v for v, n in _ENV.items() if n == field), field)
        raise ConfigError(f"{var}: {exc}") from exc
