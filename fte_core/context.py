"""The company dossier the agent speaks for: brand voice and the knowledge base source."""

from __future__ import annotations

from pathlib import Path

import msgspec

from fte_core.errors import ConfigError

KB_DOCUMENT = "product-docs"


class Context(msgspec.Struct, frozen=True, kw_only=True):
    brand_voice: str = ""
    company_profile: str = ""
    product_docs: str = ""


def load_context(directory: str | Path) -> Context:
    """Read the dossier; product-docs.md is required (it is the knowledge base)."""
    root = Path(directory)
    docs = root / "product-docs.md"
    if not docs.is_file():
        raise ConfigError(f"{docs} not found: the knowledge base needs it")

    def read(name: str) -> str:
        path = root / name
        try:
            return path.read_text(encoding="utf-8") if path.is_file() else ""
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read {path}: {exc}") from exc

    return Context(
        brand_voice=read("brand-voice.md"),
        company_profile=read("company-profile.md"),
        product_docs=read("product-docs.md"),
    )
