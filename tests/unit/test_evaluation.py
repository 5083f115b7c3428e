"""What `fte eval` counts as an answer from the right section."""

from __future__ import annotations

from service.evaluation import Expected, judge

ASKED = Expected(action="answer", section="Cancel a subscription")
TWO = Expected(action="answer", sections=("Cancel a subscription", "Export your data"))


def test_the_asked_section_leading_is_correct() -> None:
    assert judge(ASKED, "answer", (), ("cancel-a-subscription", "billing")) == (
        True,
        False,
        "answer/cancel-a-subscription",
    )


def test_the_asked_section_only_second_is_counted_apart() -> None:
    correct, second, _ = judge(ASKED, "answer", (), ("billing", "cancel-a-subscription"))
    assert (correct, second) == (False, True)


def test_a_hand_over_of_an_answerable_question_is_wrong() -> None:
    assert judge(ASKED, "escalate", ("no_kb_match",), ())[:2] == (False, False)


def test_several_questions_need_every_section_and_a_right_lead() -> None:
    both = ("export-your-data", "cancel-a-subscription")
    assert judge(TWO, "answer", (), both)[:2] == (True, False)
    assert judge(TWO, "answer", (), ("export-your-data",))[:2] == (False, False)
    assert judge(TWO, "answer", (), ("billing", *both))[:2] == (False, True)


def test_an_expected_hand_over_needs_its_reason() -> None:
    off_topic = Expected(action="escalate", reason="no_kb_match")
    assert judge(off_topic, "escalate", ("no_kb_match",), ()) == (
        True,
        False,
        "escalate/no_kb_match",
    )
    assert judge(off_topic, "answer", (), ("billing",))[0] is False
