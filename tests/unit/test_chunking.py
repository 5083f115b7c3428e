from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fte_core.chunking import check_chunks, chunk_hash, chunk_markdown, slugify
from fte_core.errors import ValidationError
from fte_core.ports import Chunk

DOC = """# Tasklane guide

Short tagline.

## Reset your password

Open the sign-in page and choose Forgot password.

### Still stuck?

Contact support.

## Invite members

Owners invite teammates from Members.
"""


def test_sections_become_chunks_with_stable_ids() -> None:
    chunks = chunk_markdown("guide", DOC)
    assert [(c.id, c.section) for c in chunks] == [
        ("guide/reset-your-password/0", "Reset your password"),
        ("guide/invite-members/0", "Invite members"),
    ]
    assert "### Still stuck?" in chunks[0].text
    assert chunk_markdown("guide", DOC) == chunks


def test_substantial_preamble_is_kept_under_the_title() -> None:
    doc = (
        "# Tasklane\n\n" + "Tasklane is a project management app for teams. " * 9 + "\n## A\n\nbody"
    )
    chunks = chunk_markdown("d", doc)
    assert chunks[0].section == "Tasklane"
    assert chunks[0].id == "d/tasklane/0"


def test_short_introduction_before_sections_is_skipped() -> None:
    intro = "This is the help center: how to use the web app and the API. " * 3
    chunks = chunk_markdown("d", f"# Tasklane docs\n\n{intro}\n## A\n\nbody")
    assert [c.section for c in chunks] == ["A"]


def test_document_without_sections_is_one_chunk_under_its_title() -> None:
    chunks = chunk_markdown("d", "# Notes\n\n" + "Tasklane keeps projects tidy. " * 4)
    assert [(c.id, c.section) for c in chunks] == [("d/notes/0", "Notes")]


def test_long_sections_split_at_paragraphs_within_the_limit() -> None:
    paragraphs = [f"Paragraph {i}. " + "word " * 40 for i in range(10)]
    doc = "## Long\n\n" + "\n\n".join(paragraphs)
    chunks = chunk_markdown("d", doc, max_chars=600)
    assert len(chunks) > 1
    assert all(len(c.text) <= 600 for c in chunks)
    assert [c.id for c in chunks] == [f"d/long/{i}" for i in range(len(chunks))]
    assert " ".join(c.text for c in chunks).split() == " ".join(paragraphs).split()


def test_an_overlong_sentence_is_cut_hard() -> None:
    chunks = chunk_markdown("d", "## S\n\n" + "x" * 250, max_chars=100)
    assert [len(c.text) for c in chunks] == [100, 100, 50]


def test_duplicate_headings_get_distinct_ids() -> None:
    chunks = chunk_markdown("d", "## FAQ\n\none\n\n## FAQ\n\ntwo")
    assert [c.id for c in chunks] == ["d/faq/0", "d/faq/1"]


@given(st.text(max_size=400), st.integers(min_value=50, max_value=500))
def test_chunks_never_exceed_the_limit_and_ids_are_unique(text: str, limit: int) -> None:
    chunks = chunk_markdown("doc", text, max_chars=limit)
    assert all(0 < len(c.text) <= limit for c in chunks)
    assert len({c.id for c in chunks}) == len(chunks)


def test_slugify() -> None:
    assert slugify("Crème brûlée: SSO & SAML!") == "creme-brulee-sso-saml"
    assert slugify("???") == "section"


def test_hash_changes_with_section_or_text() -> None:
    a = Chunk(id="d/a/0", document="d", section="A", text="t")
    assert chunk_hash(a) != chunk_hash(Chunk(id="d/a/0", document="d", section="B", text="t"))
    assert chunk_hash(a) == chunk_hash(Chunk(id="x", document="y", section="A", text="t"))


def test_check_chunks_rejects_foreign_and_duplicate_chunks() -> None:
    a = Chunk(id="d/a/0", document="d", section="A", text="t")
    with pytest.raises(ValidationError):
        check_chunks("other", [a])
    with pytest.raises(ValidationError):
        check_chunks("d", [a, a])


def test_asked_comments_become_aliases_and_leave_the_text() -> None:
    doc = (
        "## Removing a member\n<!-- asked: kick someone out | offboard a leaver -->\n\n"
        "Owners remove people under Members.\n<!-- ASKED: take away access |  -->\n"
    )
    (chunk,) = chunk_markdown("d", doc)
    assert chunk.aliases == ("kick someone out", "offboard a leaver", "take away access")
    assert chunk.text == "Owners remove people under Members."


def test_aliases_change_the_hash_and_their_absence_keeps_the_old_one() -> None:
    plain = Chunk(id="d/a/0", document="d", section="A", text="body")
    asked = Chunk(id="d/a/0", document="d", section="A", text="body", aliases=("how",))
    assert chunk_hash(plain) == chunk_hash(Chunk(id="x", document="d", section="A", text="body"))
    assert chunk_hash(asked) != chunk_hash(plain)
