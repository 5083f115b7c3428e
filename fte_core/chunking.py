"""Markdown documents to knowledge-base chunks with ids that survive re-ingestion.

A chunk id is document/section-slug/index, so an unchanged section keeps its id (and its
stored embedding) when another section of the document is edited.

A section may list how customers ask for it, in HTML comments that readers of the
rendered page never see: `<!-- asked: cancel my subscription | stop paying -->`. They
become the chunks' `aliases` (searched, never quoted: retrieval matches a casual "kick
someone out" to "Removing a member" through them) and leave the text.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Sequence

from fte_core.errors import ValidationError
from fte_core.ports import Chunk

_HEADING = re.compile(r"^##\s+(.+?)\s*#*\s*$")
_TITLE = re.compile(r"^#\s+(.+?)\s*#*\s*$")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_NON_SLUG = re.compile(r"[^a-z0-9]+")
_ASKED = re.compile(r"^\s*<!--\s*asked:(.*?)-->\s*$", re.I)
# Text before the first "## " heading becomes a chunk only when it says something. In a
# document with sections the preamble is usually an introduction about the document ("This
# is the help center...") that shares words with every question and answers none, so it
# must be substantial there; a document without sections is all preamble.
_MIN_PREAMBLE_CHARS = 80
_MIN_INTRO_CHARS = 400


def chunk_hash(chunk: Chunk) -> str:
    """What decides whether a stored chunk changed (the section title and the aliases are
    searched too; a chunk without aliases keeps the hash it had before they existed)."""
    asked = "".join(f"\n{a}" for a in chunk.aliases)
    return hashlib.sha256(f"{chunk.section}\n{chunk.text}{asked}".encode()).hexdigest()


def check_chunks(document: str, chunks: Sequence[Chunk]) -> dict[str, Chunk]:
    """Chunks by id; every chunk must belong to `document` and ids must be unique."""
    by_id: dict[str, Chunk] = {}
    for chunk in chunks:
        if chunk.document != document:
            raise ValidationError("chunks", f"chunk {chunk.id} belongs to {chunk.document!r}")
        if chunk.id in by_id:
            raise ValidationError("chunks", f"duplicate chunk id {chunk.id}")
        by_id[chunk.id] = chunk
    return by_id


def slugify(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = _NON_SLUG.sub("-", ascii_text.lower()).strip("-")
    return slug or "section"


def section_slug(chunk_id: str) -> str:
    """The section part of a chunk id (document/section-slug/index), which evaluations
    compare with slugify(expected section); an id of another form is returned whole."""
    parts = chunk_id.split("/")
    return parts[1] if len(parts) >= 3 else chunk_id


def chunk_markdown(document: str, text: str, max_chars: int = 1200) -> list[Chunk]:
    """Split on `## ` headings; sections longer than `max_chars` split at paragraphs (then
    sentences, then hard cuts for a single overlong sentence)."""
    if max_chars < 50:
        raise ValidationError("max_chars", "must be at least 50")
    chunks: list[Chunk] = []
    used: dict[str, int] = {}
    for section, raw in _sections(text):
        slug = slugify(section)
        body, aliases = _aliases(raw)
        for piece in _pack(_paragraphs(body), max_chars):
            index = used.get(slug, 0)
            used[slug] = index + 1
            chunks.append(
                Chunk(
                    id=f"{document}/{slug}/{index}",
                    document=document,
                    section=section,
                    text=piece,
                    aliases=aliases,
                )
            )
    return chunks


def _aliases(body: str) -> tuple[str, tuple[str, ...]]:
    """The section body without its `<!-- asked: a | b -->` lines, and those phrasings."""
    kept: list[str] = []
    asked: list[str] = []
    for line in body.splitlines():
        match = _ASKED.match(line)
        if match:
            asked.extend(a.strip() for a in match.group(1).split("|") if a.strip())
        else:
            kept.append(line)
    return "\n".join(kept).strip(), tuple(dict.fromkeys(asked))


def _sections(text: str) -> list[tuple[str, str]]:
    title = "Overview"
    current: str | None = None
    lines: list[str] = []
    found: list[tuple[str, str]] = []
    for line in text.splitlines():
        heading = _HEADING.match(line)
        if heading:
            _close(found, current, lines, title, _MIN_INTRO_CHARS)
            current, lines = heading.group(1), []
            continue
        title_match = _TITLE.match(line)
        if current is None and title_match:
            title = title_match.group(1)
            continue
        lines.append(line)
    _close(found, current, lines, title, _MIN_PREAMBLE_CHARS)
    return found


def _close(
    found: list[tuple[str, str]], section: str | None, lines: list[str], title: str, minimum: int
) -> None:
    """`minimum` applies to the preamble (section None): an introduction followed by
    sections needs more text than a document that has no sections."""
    body = "\n".join(lines).strip()
    if not body:
        return
    if section is None:
        if len(body) < minimum:
            return
        section = title
    found.append((section, body))


def _paragraphs(body: str) -> list[str]:
    return [p.strip() for p in re.split(r"\n\s*\n", body) if p.strip()]


def _pack(paragraphs: list[str], max_chars: int) -> list[str]:
    parts = [part for paragraph in paragraphs for part in _fit(paragraph, max_chars)]
    return _join_greedily(parts, "\n\n", max_chars)


def _fit(paragraph: str, max_chars: int) -> list[str]:
    """A paragraph longer than max_chars, as sentence groups that each fit (a sentence
    longer than max_chars is cut into max_chars pieces)."""
    if len(paragraph) <= max_chars:
        return [paragraph]
    pieces = [
        sentence[start : start + max_chars]
        for sentence in _SENTENCE_END.split(paragraph)
        for start in range(0, len(sentence), max_chars)
    ]
    return _join_greedily(pieces, " ", max_chars)


def _join_greedily(pieces: list[str], separator: str, max_chars: int) -> list[str]:
    """Consecutive pieces joined while the result fits; each piece fits on its own."""
    joined: list[str] = []
    current = ""
    for piece in pieces:
        candidate = f"{current}{separator}{piece}" if current else piece
        if len(candidate) <= max_chars:
            current = candidate
        else:
            joined.append(current)
            current = piece
    if current:
        joined.append(current)
    return joined
