"""Closing messages: "thanks, that worked" gets a short acknowledgement, not a passage.

A customer who writes back only to say the answer helped has asked nothing. Searching the
knowledge base with "thanks, that fixed it" finds some passage about fixing something,
and answering with it reads as a bot that did not listen. A message counts as closing
when it asks no question, is short, carries a thank-you or a confirmation, and every
other word is from the small vocabulary such messages use ("thanks but it still fails"
has words outside it, so it is answered or handed over as usual).
"""

from __future__ import annotations

import re

from fte_core.models import Channel
from fte_core.retrieval import clean_message
from fte_core.text import normalize

MAX_CLOSING_WORDS = 16

_MARKERS = frozenset(
    [
        "thanks",
        "thank",
        "thx",
        "ty",
        "tysm",
        "cheers",
        "appreciated",
        "appreciate",
        "worked",
        "works",
        "working",
        "fixed",
        "sorted",
        "solved",
        "resolved",
        "perfect",
        "great",
        "brilliant",
        "awesome",
        "excellent",
        "wonderful",
        "lovely",
        "helpful",
        "helped",
    ]
)
_VOCABULARY = _MARKERS | frozenset(
    [
        "a",
        "all",
        "alright",
        "and",
        "are",
        "be",
        "been",
        "did",
        "do",
        "done",
        "everything",
        "exactly",
        "figured",
        "fine",
        "for",
        "get",
        "go",
        "going",
        "good",
        "got",
        "has",
        "i",
        "i'm",
        "im",
        "is",
        "it",
        "it's",
        "its",
        "just",
        "lot",
        "looks",
        "many",
        "much",
        "mind",
        "needed",
        "never",
        "nice",
        "now",
        "ok",
        "okay",
        "out",
        "problem",
        "really",
        "set",
        "so",
        "super",
        "that",
        "that's",
        "thats",
        "the",
        "there",
        "this",
        "trick",
        "very",
        "was",
        "we",
        "we're",
        "were",
        "what",
        "you",
        "your",
        "yep",
        "yes",
        "yeah",
        "again",
        "cool",
        "issue",
        "guys",
        "mate",
        "team",
        "support",
        "help",
        "helps",
        "quick",
        "reply",
        "answer",
        "kind",
    ]
)
_WORD = re.compile(r"[a-z][a-z']*")
_DIGIT = re.compile(r"\d")


def is_closing(text: str) -> bool:
    """True for "thanks, that worked!", "perfect, all sorted now" and the like."""
    if "?" in text or _DIGIT.search(text):
        return False
    words = _WORD.findall(normalize(clean_message(text)))
    if not words or len(words) > MAX_CLOSING_WORDS:
        return False
    return any(w in _MARKERS for w in words) and all(w in _VOCABULARY for w in words)


def closing_body(channel: Channel) -> str:
    """The acknowledgement; the formatter adds the greeting and the ticket number."""
    if channel is Channel.WHATSAPP:
        return "Glad that sorted it! If anything else comes up, just message us here."
    return (
        "Thank you for letting us know, and we are glad it is working now. If anything "
        "else comes up, reply to this message and it stays on the same case."
    )
