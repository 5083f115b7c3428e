"""TwilioSender against a local fake of Twilio's Messages API, over real HTTP."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from adapters.channels.whatsapp.sender import TwilioSender
from fte_core.errors import DeliveryError, DeliveryRejected
from fte_core.models import Channel, DeliveryStatus, Reply
from fte_core.ports import DeliveryTarget
from tests.fake_twilio import FakeTwilio, Scripted, fake_twilio

ACCOUNT = "AC" + "1" * 32
TARGET = DeliveryTarget(channel=Channel.WHATSAPP, address="+14155550101")


@pytest.fixture
def twilio() -> Iterator[FakeTwilio]:
    with fake_twilio() as fake:
        yield fake


def sender_for(fake: FakeTwilio) -> TwilioSender:
    return TwilioSender.connect(
        ACCOUNT,
        "t" * 32,
        "+14155238886",
        status_callback="https://support.example.com/api/v1/webhooks/whatsapp/status",
        api_base=fake.base_url,
    )


async def test_each_part_is_one_message_in_order(twilio: FakeTwilio) -> None:
    reply = Reply(channel=Channel.WHATSAPP, parts=("first part", "second part"))
    result = await sender_for(twilio).send(reply, TARGET)
    assert result.status is DeliveryStatus.SENT
    assert [a["Sid"] for a in twilio.accepted] == list(result.provider_message_ids)
    assert twilio.bodies() == ["first part", "second part"]
    first = twilio.accepted[0]
    assert first["To"] == "whatsapp:+14155550101"
    assert first["From"] == "whatsapp:+14155238886"
    assert first["StatusCallback"].endswith("/api/v1/webhooks/whatsapp/status")


async def test_outside_the_24_hour_window_is_refused_for_good(twilio: FakeTwilio) -> None:
    twilio.script.append(Scripted(400, 63016, "Failed to send freeform message"))
    with pytest.raises(DeliveryRejected) as caught:
        await sender_for(twilio).send(Reply(channel=Channel.WHATSAPP, parts=("hi",)), TARGET)
    assert caught.value.code == "63016"
    assert twilio.accepted == []


@pytest.mark.parametrize(("status", "code"), [(429, 20429), (500, 20500), (503, None)])
async def test_rate_limits_and_outages_are_retryable(
    twilio: FakeTwilio, status: int, code: int | None
) -> None:
    twilio.script.append(Scripted(status, code))
    sender = sender_for(twilio)
    reply = Reply(channel=Channel.WHATSAPP, parts=("hi",))
    with pytest.raises(DeliveryError) as caught:
        await sender.send(reply, TARGET)
    assert not isinstance(caught.value, DeliveryRejected)
    result = await sender.send(reply, TARGET)  # the next try goes through
    assert len(result.provider_message_ids) == 1
    assert twilio.bodies() == ["hi"]


async def test_an_unreachable_api_is_retryable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    sender = TwilioSender.connect(
        ACCOUNT, "t" * 32, "+14155238886", api_base=f"http://127.0.0.1:{port}"
    )
    with pytest.raises(DeliveryError) as caught:
        await sender.send(Reply(channel=Channel.WHATSAPP, parts=("hi",)), TARGET)
    assert not isinstance(caught.value, DeliveryRejected)
    assert "t" * 32 not in str(caught.value)
