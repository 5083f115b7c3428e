from __future__ import annotations

import re

import msgspec
import pytest

from fte_core.errors import ResponderError, ValidationError
from fte_core.formatting import split_sentences
from fte_core.models import Channel, Passage
from fte_core.offline import NO_ANSWER, PARTIAL, OfflineResponder
from fte_core.ports import Answer, AnswerRequest, Question
from fte_core.testing.responder import FunctionResponder, ScriptedResponder

RESET = Passage(
    id="product-docs/resetting-your-password/0",
    document="product-docs",
    section="Resetting your password",
    text=(
        "On the sign-in page click Forgot password?, enter the email address of your account"
        " and click Send reset link. The email arrives from no-reply@tasklane.io. Open the"
        " link, type the new password twice and click Save password. The reset link can be"
        " used once and expires after 60 minutes. Resetting the password signs you out of"
        " every other device. Accounts that sign in with Google have no Tasklane password."
    ),
    score=3.0,
)
SIGN_IN = Passage(
    id="product-docs/signing-in/0",
    document="product-docs",
    section="Signing in to Tasklane",
    text=(
        "Open app.tasklane.io/login and enter your email address and password. After 5 wrong"
        " passwords in a row the account is locked for 15 minutes."
    ),
    score=1.0,
)
EXPORT = Passage(
    id="product-docs/exporting/0",
    document="product-docs",
    section="Exporting a project",
    text="Open the project menu and choose Export to download a CSV file of its tasks.",
    score=0.5,
)
RISKY = Passage(
    id="notes/risky/0",
    document="notes",
    section="Plans",
    text="The Business plan costs $12 per seat. We guarantee a refund within 30 days.",
)


def _request(question: str, channel: Channel, *passages: Passage) -> AnswerRequest:
    return AnswerRequest(
        question=question,
        subject=None,
        channel=channel,
        customer_name="Ana",
        passages=passages,
    )


async def test_email_answer_quotes_the_best_passage_in_order_and_cites_it() -> None:
    request = _request("How do I reset my password?", Channel.EMAIL, RESET, SIGN_IN)
    answer = await OfflineResponder().answer(request)
    assert answer.responder == "offline"
    assert answer.passage_ids[0] == RESET.id
    intro, body = answer.text.split("\n\n")[:2]
    assert intro == 'Here is what our help article "Resetting your password" says:'
    assert body.startswith("On the sign-in page click Forgot password?, enter")
    assert body.index("Send reset link") < body.index("Save password")


_INTROS = re.compile(
    r'Here is what our help article "[^"]*" says:|From our help article "[^"]*":'
    r'|From "[^"]*":|If you meant "[^"]*":'
)


async def test_every_sentence_of_substance_is_copied_from_the_documentation() -> None:
    docs = " ".join(p.text for p in (RESET, SIGN_IN, EXPORT))
    for channel in Channel:
        request = _request("reset link expired", channel, RESET, SIGN_IN, EXPORT)
        answer = await OfflineResponder().answer(request)
        assert _INTROS.match(answer.text)
        quoted = split_sentences(_INTROS.sub("\n", answer.text))
        assert quoted
        assert all(sentence in docs for sentence in quoted)


async def test_whatsapp_answer_is_short_and_cites_one_passage() -> None:
    request = _request("my reset link expired", Channel.WHATSAPP, RESET, SIGN_IN)
    answer = await OfflineResponder().answer(request)
    assert answer.passage_ids == (RESET.id,)
    assert len(answer.text) <= 300
    assert answer.text.startswith('From our help article "Resetting your password":')
    assert "expires after 60 minutes" in answer.text


async def test_the_passage_sharing_most_words_wins_over_retrieval_order() -> None:
    request = _request("How do I export a project to CSV?", Channel.WEB_FORM, RESET, EXPORT)
    answer = await OfflineResponder().answer(request)
    assert answer.passage_ids[0] == EXPORT.id
    assert "Export to download a CSV file" in answer.text


async def test_second_passage_is_added_only_for_words_the_first_does_not_cover() -> None:
    request = _request(
        "reset password, and why is my account locked after wrong tries?",
        Channel.EMAIL,
        RESET,
        SIGN_IN,
    )
    answer = await OfflineResponder().answer(request)
    assert answer.passage_ids == (RESET.id, SIGN_IN.id)
    assert 'From "Signing in to Tasklane":' in answer.text
    only_reset = await OfflineResponder().answer(
        _request("reset password", Channel.EMAIL, RESET, SIGN_IN)
    )
    assert only_reset.passage_ids == (RESET.id,)


async def test_one_uncovered_word_does_not_append_an_unrelated_passage() -> None:
    request = _request("reset password, my account is locked", Channel.EMAIL, RESET, SIGN_IN)
    answer = await OfflineResponder().answer(request)
    assert answer.passage_ids == (RESET.id,)
    assert "From " not in answer.text


async def test_money_percentages_and_promises_are_never_repeated() -> None:
    request = _request("how much is the business plan, refund?", Channel.EMAIL, RISKY)
    answer = await OfflineResponder().answer(request)
    assert answer == Answer(text=NO_ANSWER, passage_ids=(), responder="offline")
    assert not re.search(r"[$€£]|\d+\s*%|refund|guarantee", answer.text, re.I)


async def test_no_passages_gives_an_honest_uncited_answer() -> None:
    answer = await OfflineResponder().answer(_request("anything", Channel.EMAIL))
    assert answer.passage_ids == ()
    assert answer.text == NO_ANSWER


async def test_answers_are_deterministic() -> None:
    request = _request("How do I reset my password?", Channel.EMAIL, RESET, SIGN_IN, EXPORT)
    first = await OfflineResponder().answer(request)
    again = await OfflineResponder().answer(msgspec.structs.replace(request))
    assert first == again


# --- the responder fakes ------------------------------------------------------------------


async def test_scripted_responder_answers_in_order_then_repeats_the_last() -> None:
    responder = ScriptedResponder("first", ResponderError("down"), "last", name="script")
    request = _request("q", Channel.EMAIL, RESET, SIGN_IN)
    first = await responder.answer(request)
    assert first == Answer(text="first", passage_ids=(RESET.id, SIGN_IN.id), responder="script")
    with pytest.raises(ResponderError, match="down"):
        await responder.answer(request)
    assert (await responder.answer(request)).text == "last"
    assert (await responder.answer(request)).text == "last"
    assert responder.requests == [request] * 4
    assert responder.name == "script"


async def test_scripted_responder_cites_what_it_is_told() -> None:
    responder = ScriptedResponder("ok", passage_ids=())
    answer = await responder.answer(_request("q", Channel.EMAIL, RESET))
    assert answer.passage_ids == ()
    full = Answer(text="x", passage_ids=("a",), responder="m", fallback="why")
    assert await ScriptedResponder(full).answer(_request("q", Channel.EMAIL)) == full


def test_scripted_responder_needs_a_script() -> None:
    with pytest.raises(ValidationError) as info:
        ScriptedResponder()
    assert info.value.field == "answers"


async def test_function_responder_accepts_sync_and_async_functions() -> None:
    def sync(request: AnswerRequest) -> Answer:
        return Answer(text=request.question.upper(), passage_ids=(), responder="fn")

    async def asynchronous(request: AnswerRequest) -> Answer:
        return Answer(text=request.question[::-1], passage_ids=(), responder="fn")

    request = _request("abc", Channel.WHATSAPP)
    sync_responder = FunctionResponder(sync)
    assert (await sync_responder.answer(request)).text == "ABC"
    assert (await FunctionResponder(asynchronous).answer(request)).text == "cba"
    assert sync_responder.requests == [request]
    assert sync_responder.name == "function"


async def test_the_answer_starts_at_the_sentence_retrieval_found_closest() -> None:
    """Not the article's opening lines: the window holds the focus sentence."""
    focused = msgspec.structs.replace(
        RESET, focus="Resetting the password signs you out of every other device."
    )
    request = _request("will i be logged out of my phone?", Channel.EMAIL, focused)
    answer = await OfflineResponder().answer(request)
    assert "signs you out of every other device" in answer.text
    assert "Send reset link" not in answer.text


async def test_each_question_gets_its_own_answer() -> None:
    request = msgspec.structs.replace(
        _request("two questions", Channel.EMAIL, RESET, EXPORT),
        questions=(
            Question(text="How do I reset my password?", passages=(RESET,)),
            Question(text="How do I export a project to CSV?", passages=(EXPORT,)),
        ),
    )
    answer = await OfflineResponder().answer(request)
    assert answer.passage_ids == (RESET.id, EXPORT.id)
    assert answer.text.index("Resetting your password") < answer.text.index("Export")
    assert PARTIAL not in answer.text


async def test_a_question_without_passages_is_left_for_a_person() -> None:
    request = msgspec.structs.replace(
        _request("two questions", Channel.WHATSAPP, RESET),
        questions=(
            Question(text="How do I reset my password?", passages=(RESET,)),
            Question(text="Who is your CEO?"),
        ),
    )
    answer = await OfflineResponder().answer(request)
    assert answer.passage_ids == (RESET.id,)
    assert answer.text.endswith(PARTIAL)


def _shared(passage: Passage, share: float) -> Passage:
    return msgspec.structs.replace(passage, share=share)


@pytest.mark.parametrize("channel", list(Channel))
async def test_a_section_the_ranker_finds_nearly_as_likely_is_quoted_too(channel: Channel) -> None:
    """Retrieval cannot tell the two apart (shares 0.55 / 0.45): both are quoted, the
    second as an alternative, each sentence still copied from the documentation."""
    request = _request(
        "my password does not work", channel, _shared(RESET, 0.55), _shared(SIGN_IN, 0.45)
    )
    answer = await OfflineResponder().answer(request)
    assert answer.passage_ids == (RESET.id, SIGN_IN.id)
    assert 'If you meant "Signing in to Tasklane":' in answer.text
    docs = f"{RESET.text} {SIGN_IN.text}"
    assert all(s in docs for s in split_sentences(_INTROS.sub("\n", answer.text)))
    if channel is Channel.WHATSAPP:
        assert len(answer.text) <= 300


@pytest.mark.parametrize(("second", "first"), [(0.2, 0.8), (0.0, 0.0)])
async def test_a_distant_or_unknown_second_section_is_left_out(second: float, first: float) -> None:
    request = _request(
        "my password does not work",
        Channel.EMAIL,
        _shared(RESET, first),
        _shared(SIGN_IN, second),
    )
    answer = await OfflineResponder().answer(request)
    assert answer.passage_ids == (RESET.id,)
    assert "If you meant" not in answer.text


async def test_the_sentence_stating_what_was_asked_beats_a_distant_focus() -> None:
    """Retrieval's closest sentence by meaning opens the article; the question's own
    words ("link", "expire", "once") point at the limit stated further down."""
    focused = msgspec.structs.replace(
        RESET, focus="On the sign-in page click Forgot password?, enter the email address"
    )
    answer = await OfflineResponder().answer(
        _request("does the reset link expire once used", Channel.WHATSAPP, focused)
    )
    assert "expires after 60 minutes" in answer.text
