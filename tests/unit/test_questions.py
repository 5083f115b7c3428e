"""Splitting a message into its questions, and retrieving each on its own."""

from __future__ import annotations

import pytest

from fte_core.chunking import chunk_markdown
from fte_core.retrieval import clean_message, partial_handover, retrieve, split_questions
from fte_core.spelling import speller
from fte_core.testing.knowledge import InMemoryKnowledgeBase

DOCS = """# Help

## Exporting data to CSV or JSON

Open Project menu > Export and choose CSV or JSON to download the project.

## Importing from Jira, Trello or Asana

Go to Settings > Workspace > Import and choose Jira, Trello or Asana.

## Connecting Slack

Go to Settings > Integrations > Slack and click Connect.
"""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "How do I invite people? And how do I connect Slack to a project?",
            ["How do I invite people?", "how do I connect Slack to a project?"],
        ),
        (
            "how do i export my project to csv? also can i import from jira",
            ["how do i export my project to csv?", "can i import from jira"],
        ),
        (
            "Hello,\n\n1. How do I turn on 2FA?\n2. Where are my sessions listed?\n\nThanks",
            ["How do I turn on 2FA?", "Where are my sessions listed?"],
        ),
        # statements are context of the question they lead to, not questions
        (
            "My webhook stays inactive. What must the endpoint send back?",
            ["My webhook stays inactive. What must the endpoint send back?"],
        ),
        # two questions joined in one sentence, or a second topic opened by a lead-in
        (
            "how do I mute a project and can I stop the daily email digest",
            ["how do I mute a project?", "can I stop the daily email digest"],
        ),
        (
            "I need to change my email address. Also I want to upload a new profile photo.",
            ["I need to change my email address.", "I want to upload a new profile photo."],
        ),
        (
            "hey so 1) invite a guest to a project 2) remove someone who left",
            ["hey so invite a guest to a project", "remove someone who left"],
        ),
        # "sign up" is a question of its own though its particle is a stopword; "+" joins
        (
            "How do I sign up? And then how do I turn on two-factor authentication?",
            ["How do I sign up?", "then how do I turn on two-factor authentication?"],
        ),
        (
            "install the android app + can it work offline",
            ["install the android app?", "can it work offline"],
        ),
        (
            "mute one task + archive everything in my inbox",
            ["mute one task?", "archive everything in my inbox"],
        ),
        # a "+" between words that do not each say enough stays inside the question
        ("connect slack + github", None),
        ("How do I log in? any idea?", None),
        # one topic with two verbs stays one question
        ("How do I export and import data?", None),
        ("Where is the export button and what formats are there?", None),
        # a follow-up with no content of its own stays with its question
        ("Can I move a project to another workspace? any idea?", None),
        ("Can I do this? I tried already.", None),
    ],
)
def test_split_questions(text: str, expected: list[str] | None) -> None:
    assert split_questions(text) == (expected or [clean_message(text)])


def test_greeting_and_sign_off_are_not_part_of_the_question() -> None:
    text = "Dear support,\n\nHow do I export a project?\n\nKind regards,\nClaire Dupont"
    assert clean_message(text) == "How do I export a project?"
    assert split_questions(text, "Export") == ["Export\nHow do I export a project?"]


async def _kb() -> InMemoryKnowledgeBase:
    kb = InMemoryKnowledgeBase()
    await kb.ingest("help", chunk_markdown("help", DOCS))
    return kb


async def test_each_question_is_retrieved_on_its_own() -> None:
    result = await retrieve(
        await _kb(), "How do I export to CSV? Also can I import from Jira?", None, 3
    )
    assert [q.passages[0].section for q in result.questions] == [
        "Exporting data to CSV or JSON",
        "Importing from Jira, Trello or Asana",
    ]
    assert not partial_handover(result)
    assert {p.section for p in result.passages} >= {
        "Exporting data to CSV or JSON",
        "Importing from Jira, Trello or Asana",
    }


async def test_a_question_the_base_cannot_answer_is_left_for_a_person() -> None:
    result = await retrieve(
        await _kb(), "How do I connect Slack? And who won the football match?", None, 3
    )
    assert [bool(q.passages) for q in result.questions] == [True, False]
    assert partial_handover(result)


async def test_questions_answered_by_one_section_are_one_question() -> None:
    result = await retrieve(
        await _kb(), "Can I export to CSV? Can the export be JSON instead?", None, 3
    )
    assert len(result.questions) == 1
    assert result.questions[0].passages[0].section == "Exporting data to CSV or JSON"


async def test_a_follow_up_that_finds_nothing_is_searched_with_the_question_before_it() -> None:
    """ "afterwards" alone matches no article: searched after the first question it finds
    the same section, and the two are one question; an unrelated follow-up stays apart."""
    kb = await _kb()
    leaning = await retrieve(kb, "How do I export to JSON? Can I change it afterwards?", None, 3)
    assert [q.passages[0].section for q in leaning.questions] == ["Exporting data to CSV or JSON"]
    assert not partial_handover(leaning)
    for unrelated in ("Who won the football match?", "And the capital of Mongolia?"):
        apart = await retrieve(kb, f"How do I export to JSON? {unrelated}", None, 3)
        assert [bool(q.passages) for q in apart.questions] == [True, False]


async def test_a_question_with_typos_is_searched_again_with_them_mended() -> None:
    """No article shares a word with "exprot", "projcet" or "jsno"; mended against the
    documentation's words the question finds the export article, and without a speller
    it is left for a person."""
    kb = await _kb()
    typed = "how do i exprot a projcet to jsno"
    found = await retrieve(kb, typed, None, 3, speller(DOCS))
    assert found.questions[0].passages[0].section == "Exporting data to CSV or JSON"
    assert not (await retrieve(kb, typed, None, 3)).passages


async def test_an_empty_message_asks_nothing() -> None:
    result = await retrieve(await _kb(), "  ?! ", None, 3)
    assert result.questions == ()
    assert result.passages == []
