"""What the customer reads when a person, not the agent, has their case (SPEC 4, brand
voice): the hand-over and the acknowledgement while a human owns it. Kept apart from the
channel formatter, which frames whatever body it is given."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from fte_core.context import DEFAULT_SIGNATURE
from fte_core.models import Channel

_TEAM_BY_REASON: Mapping[str, str] = MappingProxyType(
    {
        "pricing": "our billing team",
        "refund": "our billing team",
        "account_security": "our security team",
    }
)
_DEFAULT_TEAM = "a member of our team"


def handover_body(reason: str, channel: Channel, signature: str = DEFAULT_SIGNATURE) -> str:
    """What the customer reads when a person takes over (SPEC 4, brand voice).

    Names at most the team, never the reason code, the rule or the policy, and never a
    time or an outcome; the formatter adds the ticket number.
    """
    team = _TEAM_BY_REASON.get(reason, _DEFAULT_TEAM)
    if channel is Channel.WHATSAPP:
        return (
            f"Thanks for your message. I've passed this to {team}, who will follow up with"
            " you here. Reply anytime and it stays on the same case."
        )
    who = "A specialist from " + team if team != _DEFAULT_TEAM else "A member of our team"
    return (
        f"Thank you for contacting {signature}. "
        f"{who} will review your message and follow up with you. "
        "If you reply with your ticket number, on any channel, it stays on the same case."
    )


def acknowledgement_body(channel: Channel) -> str:
    """What a customer reads while a person has their case (at most once per period);
    the formatter adds the ticket number."""
    if channel is Channel.WHATSAPP:
        return "Thanks, got it. A specialist has your case and will reply here."
    return (
        "Thank you for your message. A specialist has your case and has been sent what you"
        " wrote; they will reply to you directly."
    )
