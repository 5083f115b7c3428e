"""Channel formatting: the one place a reply body becomes what a customer receives.

Every reply (an answer, a hand-over, an apology) goes through `format_for_channel`, so
the channel limits of SPEC 9 hold whatever produced the body: an LLM, the offline
responder or a template. Pure functions, no I/O.

WhatsApp parts invariant (checked by the property tests): the parts of a reply are
consecutive, non-empty, stripped slices of the formatted text (`render_for_channel`), in
order; only whitespace lies before, between and after them (between two parts: the
whitespace the split consumed, or nothing at a hard cut inside a "word" longer than the
limit). So `"".join(parts)` with whitespace removed equals the formatted text with
whitespace removed, and no character is added, lost or moved.
"""

from __future__ import annotations

import bisect
import re
import string
import unicodedata
from collections.abc import Mapping
from types import MappingProxyType
from typing import Literal

import msgspec

from fte_core.context import DEFAULT_SIGNATURE
from fte_core.errors import ValidationError
from fte_core.models import Channel, Reply

Tone = Literal["formal", "conversational", "semi-formal"]

ELLIPSIS = "…"
_GREETING_FIELDS = frozenset({"name"})
_CLOSING_FIELDS = frozenset({"ticket_number", "status_url", "signature"})


class ChannelConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Per-channel settings (the `channel_configs` table decodes into this).

    Templates use str.format placeholders: `{name}` in greeting_named; `{ticket_number}`,
    `{status_url}` and `{signature}` (who signs: the company's support team, see
    Context.signature) in closing lines. Limits count the WHOLE formatted message.
    """

    channel: Channel
    tone: Tone
    max_words: int | None = None
    max_chars: int | None = None  # whole message; the body is shortened to fit
    max_chars_per_part: int | None = None  # one delivered message (WhatsApp: 1600)
    preferred_chars: int | None = None  # a style target for writers, never enforced
    greeting_named: str = ""
    greeting_anonymous: str = ""
    closing: tuple[str, ...] = ()
    status_url: str = "/"
    signature: str = DEFAULT_SIGNATURE

    def __post_init__(self) -> None:
        for field in ("max_words", "max_chars", "max_chars_per_part", "preferred_chars"):
            value = getattr(self, field)
            if value is not None and value < 1:
                raise ValidationError(field, f"must be a positive integer, got {value}")
        _check_template("greeting_named", self.greeting_named, _GREETING_FIELDS)
        _check_template("greeting_anonymous", self.greeting_anonymous, frozenset())
        for line in self.closing:
            _check_template("closing", line, _CLOSING_FIELDS)


def _check_template(field: str, template: str, allowed: frozenset[str]) -> None:
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as exc:
        raise ValidationError(field, f"invalid template {template!r}: {exc}") from exc
    unknown = names - allowed
    if unknown:
        raise ValidationError(field, f"unknown placeholder(s) {sorted(unknown)} in {template!r}")


DEFAULT_CHANNEL_CONFIGS: Mapping[Channel, ChannelConfig] = MappingProxyType(
    {
        Channel.EMAIL: ChannelConfig(
            channel=Channel.EMAIL,
            tone="formal",
            max_words=500,
            greeting_named="Dear {name},",
            greeting_anonymous="Hello,",
            closing=("Best regards,", "{signature}", "Ticket {ticket_number}"),
        ),
        Channel.WHATSAPP: ChannelConfig(
            channel=Channel.WHATSAPP,
            tone="conversational",
            max_chars=4800,  # about three messages: a longer text is a wall, not a chat
            max_chars_per_part=1600,
            preferred_chars=300,
            closing=("Ticket {ticket_number}",),
        ),
        Channel.WEB_FORM: ChannelConfig(
            channel=Channel.WEB_FORM,
            tone="semi-formal",
            max_words=300,
            greeting_named="Hello {name},",
            greeting_anonymous="Hello,",
            closing=(
                "Your ticket number is {ticket_number}. You can follow it and reply at any"
                " time on its status page: {status_url}",
                "{signature}",
            ),
        ),
    }
)


# --- text primitives ---------------------------------------------------------------

_HSPACE = re.compile(r"[^\S\n]+")
_MANY_NEWLINES = re.compile(r"\n{3,}")
# A sentence: from a non-space up to terminal punctuation (plus closing quotes) that is
# followed by whitespace or the end, or up to a line break. Possessive quantifiers keep
# long runs of punctuation linear.
_SENTENCE = re.compile(r"\S.*?(?:[.!?…。！？]++[\"'”’»)\]]*+(?=\s|\Z)|(?=\n)|\Z)", re.S)
_WORD = re.compile(r"\S+")
# Unicode categories Cs (lone surrogates: dropped) and Cc but the newline (controls: a
# space, some are word separators: never glue two words); regexes, not a per-character
# loop, which cost ~1 ms per message.
_SURROGATE = re.compile("[\ud800-\udfff]")
_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f]")
_GLUE = frozenset({"\u200d", "\ufe0e", "\ufe0f"})  # zero-width joiner, variation selectors


def count_words(text: str) -> int:
    """Words are whitespace-separated runs, the same split every limit here uses."""
    return len(text.split())


def collapse_blank_lines(text: str) -> str:
    """At most one blank line in a row, the ends trimmed."""
    return _MANY_NEWLINES.sub("\n\n", text).strip()


def normalize_text(text: str) -> str:
    """Canonical body text: newlines unified, control chars and lone surrogates gone,
    horizontal whitespace collapsed, lines trimmed, at most one blank line in a row."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub(" ", _SURROGATE.sub("", text))
    lines = (_HSPACE.sub(" ", line).strip() for line in text.split("\n"))
    return collapse_blank_lines("\n".join(lines))


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence; only whitespace lies between two spans."""
    return [m.span() for m in _SENTENCE.finditer(text)]


def split_sentences(text: str) -> list[str]:
    return [text[a:b].strip() for a, b in sentence_spans(text)]


# --- splitting long messages ---------------------------------------------------------


def split_message(text: str, limit: int) -> tuple[str, ...]:
    """Split `text` into parts of at most `limit` characters, in order.

    Prefers the last sentence end that fits, then the last whitespace, and only cuts
    inside a word (never before a combining mark or emoji joiner) when one word is longer
    than the limit. See the module docstring for the re-join invariant.
    """
    if limit < 1:
        raise ValidationError("limit", f"must be a positive integer, got {limit}")
    ends = [end for _, end in sentence_spans(text)]
    parts: list[str] = []
    pos = _skip_space(text, 0)
    while pos < len(text):
        cut = _cut_point(text, pos, limit, ends)
        part = text[pos:cut].rstrip()
        parts.append(part)
        pos = _skip_space(text, pos + len(part))
    return tuple(parts)


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos].isspace():
        pos += 1
    return pos


def _cut_point(text: str, pos: int, limit: int, ends: list[int]) -> int:
    """End (exclusive) of the part starting at `pos`, a non-space character."""
    if len(text) - pos <= limit:
        return len(text)
    index = bisect.bisect_right(ends, pos + limit) - 1
    if index >= 0 and ends[index] > pos:
        return ends[index]
    for cut in range(pos + limit, pos, -1):
        if text[cut].isspace():
            return cut
    return _hard_cut(text, pos, limit)


def _hard_cut(text: str, pos: int, limit: int) -> int:
    cut = pos + limit
    while cut > pos + 1 and (unicodedata.combining(text[cut]) or text[cut] in _GLUE):
        cut -= 1
    return cut


# --- shortening to a budget ------------------------------------------------------------


def truncate(text: str, *, max_words: int | None = None, max_chars: int | None = None) -> str:
    """The longest prefix of `text` ending at a sentence end within both budgets.

    When not even the first sentence fits, it is cut at a word (then, for one enormous
    word, at a character) and marked with an ellipsis attached to the last word.
    """
    words_cap = max_words if max_words is not None else len(text) + 1
    chars_cap = max_chars if max_chars is not None else len(text) + 1
    if count_words(text) <= words_cap and len(text) <= chars_cap:
        return text
    if words_cap <= 0 or chars_cap <= 1:
        return ""
    best = 0
    words = 0
    for start, end in sentence_spans(text):
        words += count_words(text[start:end])
        if words > words_cap or end > chars_cap:
            break
        best = end
    if best:
        return text[:best]
    return _cut_words(text, words_cap, chars_cap - len(ELLIPSIS)) + ELLIPSIS


def _cut_words(text: str, words_cap: int, chars_cap: int) -> str:
    end = 0
    for count, match in enumerate(_WORD.finditer(text), start=1):
        if count > words_cap or match.end() > chars_cap:
            break
        end = match.end()
    if end:
        return text[:end]
    return text[: _hard_cut(text, 0, chars_cap)].rstrip() if chars_cap > 0 else ""


# --- the formatter ----------------------------------------------------------------------

_TICKET = re.compile(r"\S{1,64}")
_NAME_MAX_WORDS = 4
_NAME_MAX_CHARS = 60


def format_for_channel(
    body: str,
    channel: Channel,
    *,
    ticket_number: str,
    customer_name: str | None = None,
    config: ChannelConfig | None = None,
) -> Reply:
    """Frame `body` for `channel`: greeting, body shortened to the limits, closing; split
    into messages where the channel has a per-message limit.

    Never raises for any body text; raises ValidationError for a bad ticket number or a
    config meant for another channel. The greeting and closing are never cut: only the
    body gives way, at a sentence end.
    """
    cfg = config if config is not None else DEFAULT_CHANNEL_CONFIGS[channel]
    text = render_for_channel(
        body, channel, ticket_number=ticket_number, customer_name=customer_name, config=cfg
    )
    if cfg.max_chars_per_part is None:
        return Reply(channel=channel, parts=(text,))
    return Reply(channel=channel, parts=split_message(text, cfg.max_chars_per_part))


def render_for_channel(
    body: str,
    channel: Channel,
    *,
    ticket_number: str,
    customer_name: str | None = None,
    config: ChannelConfig | None = None,
) -> str:
    """The whole formatted message before any split (what the parts re-join to)."""
    cfg = config if config is not None else DEFAULT_CHANNEL_CONFIGS[channel]
    if cfg.channel != channel:
        raise ValidationError("config", f"config is for {cfg.channel}, not {channel}")
    ticket = ticket_number.strip()
    if not _TICKET.fullmatch(ticket):
        raise ValidationError("ticket_number", "must be 1-64 non-space characters")
    head = _greeting(cfg, _clean_name(customer_name))
    tail = "\n".join(
        line.format(ticket_number=ticket, status_url=cfg.status_url, signature=cfg.signature)
        for line in cfg.closing
    )
    return _fit_body(cfg, head, normalize_text(body), tail)


def _clean_name(name: str | None) -> str:
    if name is None:
        return ""
    words = normalize_text(name).split()[:_NAME_MAX_WORDS]
    return " ".join(words)[:_NAME_MAX_CHARS].strip()


def _greeting(cfg: ChannelConfig, name: str) -> str:
    if name and cfg.greeting_named:
        return cfg.greeting_named.format(name=name)
    return cfg.greeting_anonymous


def _assemble(head: str, body: str, tail: str) -> str:
    return "\n\n".join(section for section in (head, body, tail) if section)


def _fit_body(cfg: ChannelConfig, head: str, body: str, tail: str) -> str:
    frame = _assemble(head, "", tail)
    words_left = None if cfg.max_words is None else cfg.max_words - count_words(frame)
    chars_left = None
    if cfg.max_chars is not None:  # the body adds itself plus one section separator
        chars_left = cfg.max_chars - len(frame) - (len("\n\n") if frame else 0)
    return _assemble(head, truncate(body, max_words=words_left, max_chars=chars_left), tail)
