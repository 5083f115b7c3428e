"""Which messages are only a thank-you or a confirmation (fte_core.closing)."""

from __future__ import annotations

import pytest

from fte_core.closing import closing_body, is_closing
from fte_core.models import Channel


@pytest.mark.parametrize(
    "text",
    [
        "thanks, that worked!",
        "Thank you",
        "great, that fixed it, thank you so much",
        "Perfect, all sorted now.\n\nThanks,\nTom",
        "Thanks for the quick reply, that did the trick!",
        "ok got it, cheers",
        "yes that solved the problem, appreciated",
    ],
)
def test_a_thank_you_or_confirmation_is_closing(text: str) -> None:
    assert is_closing(text)


@pytest.mark.parametrize(
    "text",
    [
        "thanks but it still fails",
        "thanks! how do I export a project?",
        "Thanks. The 2fa code is rejected now",
        "ok",  # no thanks, no confirmation: nothing to acknowledge
        "it worked yesterday, not today",
        "thanks, I need to talk to a person",
        "thank you " * 10,  # too long to be only a sign-off
        "that worked for 3 of my 5 projects",
    ],
)
def test_anything_that_asks_or_reports_a_problem_is_not_closing(text: str) -> None:
    assert not is_closing(text)


def test_the_acknowledgement_fits_the_channel() -> None:
    assert len(closing_body(Channel.WHATSAPP)) < len(closing_body(Channel.EMAIL))
    assert "?" not in closing_body(Channel.EMAIL)
