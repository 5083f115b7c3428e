"""The company dossier the agent speaks for: brand voice and the knowledge base source."""

from __future__ import annotations

import re
from pathlib import Path

import msgspec

from fte_core.errors import ConfigError

KB_DOCUMENT = "product-docs"
DEFAULT_SIGNATURE = "Customer Support"
_TITLE = re.compile(r"^#[ \t]+(.+?)[ \t]*$", re.M)
_PROFILE_WORDS = re.compile(r"\s*\b(?:company\s+)?profile\b.*$", re.I)
_LEGAL_FORM = re.compile(r",?\s+(?:Inc\.?|Ltd\.?|LLC|GmbH|S\.?A\.?|AG|plc|Corp\.?|B\.?V\.?)$", re.I)


class Context(msgspec.Struct, frozen=True, kw_only=True):
    brand_voice: str = ""
    company_profile: str = ""
    product_docs: str = ""

    @property
    def company(self) -> str:
        """The company's name, from the profile's first heading ("# Tasklane Inc. company
        profile" -> "Tasklane Inc."); "" without a profile. The library serves any
        company: nothing in the core names one."""
        match = _TITLE.search(self.company_profile)
        return _PROFILE_WORDS.sub("", match.group(1)).strip() if match else ""

    @property
    def signature(self) -> str:
        """Who signs the replies: the name without its legal form, then "Support"."""
        brand = _LEGAL_FORM.sub("", self.company).strip(" ,")
        return f"{brand} Support" if brand else DEFAULT_SIGNATURE


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
