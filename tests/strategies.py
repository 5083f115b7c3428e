"""Hypothesis strategies for the policy engine, usable against ANY rule set.

Messages in the three channels' styles, hostile decorations of a trigger phrase (case,
look-alike letters, accents, full-width forms, invisible characters, odd spacing), random
unicode, currency amounts and benign drafts, and random rule sets compiled through the
real loader (so the differential test exercises exactly what production loads).
"""

from __future__ import annotations

import string
import unicodedata
from collections.abc import Sequence
from typing import Any

import yaml
from hypothesis import assume
from hypothesis import strategies as st

from fte_core.errors import RuleLimitError
from fte_core.models import Channel, Priority
from fte_core.policy.durable import check_limits
from fte_core.policy.loader import RuleSet, build_ruleset
from fte_core.policy.schema import INPUT_REASONS, OUTPUT_REASONS
from fte_core.text import normalize

Draw = st.DrawFn
RuleDict = dict[str, Any]


def _lookalikes() -> dict[str, tuple[str, ...]]:
    """Cyrillic/Greek/IPA letters that fte_core.text folds to a Latin letter, by letter.

    Derived from `normalize` itself so the strategy follows the engine's own table.
    """
    blocks = [(0x0250, 0x02AF), (0x0370, 0x03FF), (0x0400, 0x052F), (0x0530, 0x058F)]
    found: dict[str, list[str]] = {}
    for start, end in blocks:
        for code in range(start, end + 1):
            ch = chr(code)
            if unicodedata.category(ch) not in ("Ll", "Lu"):
                continue
            folded = normalize(ch)
            if len(folded) == 1 and folded in string.ascii_lowercase:
                found.setdefault(folded, []).append(ch)
    return {k: tuple(v) for k, v in found.items()}


LOOKALIKES = _lookalikes()
ACCENTS = ("\u0300", "\u0301", "\u0302", "\u0303", "\u0304", "\u0306", "\u0308", "\u030a")
# Invisible inside a word: format characters, and the default-ignorable marks (combining
# grapheme joiner, variation selectors) that are combining class 0.
ZERO_WIDTH = ("\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u034f", "\ufe0f")
EMOJI = ("😀", "🙏", "😡", "👍", "🔥", "💸", "❤️", "🤬", "😭", "✅", "👋🏽")
WORD_GAPS = (" ", "  ", "\t", "\n", " \u00a0", "-", "_", " - ")
SEPARATORS = (" ", "\n", ", ", " (", ") ", ": ", " - ", "! ", "? ", ' "', "' ", "... ", ". ")


def channels() -> st.SearchStrategy[Channel]:
    return st.sampled_from(list(Channel))


# --- channel-styled messages -------------------------------------------------------------

FORMAL_SENTENCES = (
    "I hope this message finds you well.",
    "We have been using Tasklane for our marketing team for a few months now.",
    "Could you please advise how to configure recurring tasks for our weekly reviews?",
    "Our workspace administrator is currently on leave.",
    "The timeline view does not show the dependencies we created yesterday.",
    "Thank you in advance for your assistance.",
    "I would appreciate a reply at your earliest convenience.",
    "Please find the details of our setup below.",
)
NAMES = ("Olivia", "Karim", "Henrik", "Ruth", "Mei", "Tomás", "Zoë", "Anders")
WHATSAPP_BITS = (
    "hi",
    "hey",
    "pls help",
    "board not loading",
    "how do i add ppl to my workspace",
    "cant find the export button",
    "thx",
    "ok",
    "asap",
    "tasks r gone??",
    "app keeps logging me out",
    "wat",
)
WEB_SUBJECTS = ("Question about boards", "Slack integration", "Import from Jira", "Account")
WEB_SENTENCES = (
    "Workspace: acme-design.",
    "We imported a CSV file and the assignees are missing.",
    "The Slack notifications stopped after we renamed the channel.",
    "How do I give a Guest access to only one project?",
    "Steps to reproduce: open the board, drag a card, reload the page.",
    "Browser: Firefox on Windows.",
)


@st.composite
def email_body(draw: Draw, middle: str = "") -> str:
    before = draw(st.lists(st.sampled_from(FORMAL_SENTENCES), max_size=3))
    after = draw(st.lists(st.sampled_from(FORMAL_SENTENCES), max_size=2))
    name = draw(st.sampled_from(NAMES))
    body = " ".join([*before, middle, *after]).strip()
    return f"Dear Tasklane team,\n\n{body}\n\nKind regards,\n{name}"


@st.composite
def whatsapp_body(draw: Draw, middle: str = "") -> str:
    bits = draw(st.lists(st.sampled_from(WHATSAPP_BITS), min_size=1, max_size=4))
    at = draw(st.integers(0, len(bits)))
    words = [*bits[:at], middle, *bits[at:]] if middle else bits
    tail = draw(st.sampled_from(("", " 🙏", "!!", "??", " 😡", " thx")))
    return " ".join(words) + tail


@st.composite
def web_form_body(draw: Draw, middle: str = "") -> str:
    subject = draw(st.sampled_from(WEB_SUBJECTS))
    lines = draw(st.lists(st.sampled_from(WEB_SENTENCES), min_size=1, max_size=3))
    at = draw(st.integers(0, len(lines)))
    body = [*lines[:at], middle, *lines[at:]] if middle else lines
    return f"Subject: {subject}\n" + "\n".join(body)


_STYLES = {
    Channel.EMAIL: email_body,
    Channel.WHATSAPP: whatsapp_body,
    Channel.WEB_FORM: web_form_body,
}


@st.composite
def channel_message(
    draw: Draw, middle: str = "", allowed: Sequence[Channel] | None = None
) -> tuple[Channel, str]:
    """A message in one channel's style, with `middle` placed inside it."""
    channel = draw(st.sampled_from(list(allowed or Channel)))
    return channel, draw(_STYLES[channel](middle))


def unicode_text(max_size: int = 400) -> st.SearchStrategy[str]:
    """Any str (hypothesis never yields lone surrogates: they cannot be encoded)."""
    return st.text(max_size=max_size)


@st.composite
def huge_text(draw: Draw, max_bytes: int = 100_000) -> str:
    """Up to ~100 KB built by repeating a random chunk (hypothesis cannot draw that much)."""
    chunk = draw(st.text(min_size=1, max_size=60))
    size = draw(st.integers(1, max_bytes))
    return (chunk * (size // len(chunk) + 1))[:size]


# --- decorations of a trigger phrase ----------------------------------------------------


def expand_stars(draw: Draw, phrase: str) -> str:
    """`refund*` -> `refund` + a few letters, word by word."""
    words = []
    for word in phrase.split(" "):
        if word.endswith("*"):
            suffix = draw(st.text(alphabet=string.ascii_lowercase, max_size=4))
            word = word.rstrip("*") + suffix
        words.append(word)
    return " ".join(words)


def _decorate_char(draw: Draw, ch: str) -> str:
    if ch.isascii() and ch.isalpha():
        ch = ch.upper() if draw(st.booleans()) else ch.lower()
    kinds = ("plain", "plain", "lookalike", "accented lookalike", "fullwidth", "accent", "zw")
    kind = draw(st.sampled_from(kinds))
    if kind.endswith("lookalike") and ch.lower() in LOOKALIKES:
        ch = draw(st.sampled_from(LOOKALIKES[ch.lower()]))
        if kind == "accented lookalike":  # "rέfund": Greek epsilon with tonos
            ch = unicodedata.normalize("NFC", ch + draw(st.sampled_from(ACCENTS)))
    elif kind == "fullwidth" and ch.isascii() and ch.isalnum():
        ch = chr(ord(ch) + 0xFEE0)
    elif kind == "accent" and ch.isalnum():
        ch = ch + draw(st.sampled_from(ACCENTS))
    elif kind == "zw":
        ch = ch + draw(st.sampled_from(ZERO_WIDTH))
    return ch


@st.composite
def decorated_phrase(draw: Draw, phrase: str) -> str:
    """The phrase as a hostile customer might type it; it must still normalise back."""
    out = []
    for ch in expand_stars(draw, phrase):
        out.append(draw(st.sampled_from(WORD_GAPS)) if ch == " " else _decorate_char(draw, ch))
    return "".join(out)


@st.composite
def surrounding_text(draw: Draw) -> str:
    """Filler around a phrase: random unicode, emoji or channel chatter."""
    return draw(
        st.one_of(
            st.just(""),
            unicode_text(40),
            st.sampled_from(EMOJI),
            st.sampled_from(FORMAL_SENTENCES + WHATSAPP_BITS + WEB_SENTENCES),
        )
    )


@st.composite
def message_with_phrase(
    draw: Draw, phrase: str, allowed: Sequence[Channel] | None = None
) -> tuple[Channel, str]:
    """A channel message with the decorated phrase inside, at word boundaries."""
    core = draw(decorated_phrase(phrase))
    left = draw(surrounding_text()) + draw(st.sampled_from(SEPARATORS))
    right = draw(st.sampled_from(SEPARATORS)) + draw(surrounding_text())
    return draw(channel_message(left + core + right, allowed))


# --- drafts -------------------------------------------------------------------------------

BENIGN_DRAFT_SENTENCES = (
    "To create a recurring task, open the task and choose Repeat in the task details.",
    "You can invite members from Workspace settings, then Members, then Invite.",
    "Guests can only see the projects they are explicitly added to.",
    "Boards show tasks as cards grouped by status; drag a card to change its status.",
    "To export a project, open the project menu and choose Export to CSV or JSON.",
    "The Slack integration posts updates to the channel you pick when you connect it.",
    "If notifications stopped, check Notification settings in your profile.",
    "Jira import brings over issues, assignees and comments from the projects you select.",
    "Admins can change a member's role from the Members page.",
    "Two-factor authentication can be turned on from Security in your profile.",
    "Timelines show task dependencies as arrows between bars.",
    "Automations run when a task changes status, assignee or due date field.",
    "Webhooks send a JSON payload to your URL when a task is created or updated.",
    "Subtasks inherit the project of their parent task.",
)
AMOUNT_FORMATS = (
    "${n}",
    "$ {n}",
    "${n}.99",
    "{n}.99 USD",
    "{n} USD",
    "USD {n}",
    "€{n}",
    "{n} €",
    "£{n}",
    "{n} euros",
    "{n} EUR",
    "{n} dollars",
    "{n},200 dollars",
    "${n},000",
    "{n} pounds",
)


@st.composite
def currency_amount(draw: Draw) -> str:
    n = draw(st.integers(1, 999))
    return draw(st.sampled_from(AMOUNT_FORMATS)).format(n=n)


@st.composite
def benign_draft(draw: Draw) -> str:
    sentences = draw(
        st.lists(st.sampled_from(BENIGN_DRAFT_SENTENCES), min_size=1, max_size=4, unique=True)
    )
    greeting = draw(st.sampled_from(("", "Hi there, ", "Hello! ", "Thanks for reaching out. ")))
    return greeting + " ".join(sentences)


@st.composite
def draft_with_amount(draw: Draw) -> str:
    """A benign draft with a currency amount spliced in at a sentence or word boundary."""
    sentences = list(draw(benign_draft()).split(". "))
    amount = draw(currency_amount())
    lead = draw(st.sampled_from(("It is ", "That comes to ", "", "Total: ", "about ")))
    at = draw(st.integers(0, len(sentences)))
    sentences.insert(at, f"{lead}{amount}")
    return ". ".join(sentences)


# --- random rule sets ---------------------------------------------------------------------

VOCABULARY = ("refund", "price", "lawyer", "human", "hacked", "cancel", "invoice", "board")
PHRASES = (*VOCABULARY, "money back", "talk to", "refund*", "pric*", "legal action", "can't")
PATTERNS = (r"\d+", r"\bboard\w*", r"(?:ref|pri)\w+", r"[$€£]\s?\d", r"\bcan(?:not|'t)\b", "ck")
THRESHOLDS = (0.0, 0.1, 0.15, 0.3, 0.35, 0.5, 0.65, 0.9, 1.0)
FILLER = ("hello", "my", "team", "the", "please", "now", "again", "12", "$5", "cannot", "hack")


def thresholds() -> st.SearchStrategy[float]:
    """Rule thresholds have at most 4 decimals (the schema rejects finer ones)."""
    return st.sampled_from(THRESHOLDS) | st.integers(0, 10_000).map(lambda bp: bp / 10_000)


def sentiments() -> st.SearchStrategy[float]:
    """Scores that often sit exactly on (or a hair off) a rule threshold."""
    near = st.sampled_from(THRESHOLDS).flatmap(
        lambda t: st.sampled_from((t, max(0.0, t - 1e-9), min(1.0, t + 1e-9), t - 4e-5))
    )
    return st.sampled_from(THRESHOLDS) | near.map(lambda v: max(0.0, v)) | st.floats(0.0, 1.0)


def _tuples(options: Sequence[str], max_size: int = 3) -> st.SearchStrategy[list[str]]:
    return st.lists(st.sampled_from(options), min_size=1, max_size=max_size, unique=True)


_LEAF_KEYS: dict[str, st.SearchStrategy[Any]] = {
    "any_phrases": _tuples(PHRASES),
    "all_phrases": _tuples(PHRASES, 2),
    "patterns": _tuples(PATTERNS, 2),
    "sentiment_below": thresholds(),
    "sentiment_above": thresholds(),
    "channel_in": _tuples([c.value for c in Channel], 2),
}


def _leaf() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=_LEAF_KEYS).filter(bool)


def _extend(children: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    nested = st.one_of(
        st.builds(lambda xs: {"all": xs}, st.lists(children, min_size=1, max_size=3)),
        st.builds(lambda xs: {"any": xs}, st.lists(children, min_size=1, max_size=3)),
        st.builds(lambda x: {"not": x}, children),
    )
    return st.one_of(nested, st.builds(lambda a, b: {**a, **b}, _leaf(), nested))


def conditions() -> st.SearchStrategy[dict[str, Any]]:
    """A `when` mapping: leaf tests, all/any/not nesting, keys in one mapping ANDed."""
    return st.recursive(_leaf(), _extend, max_leaves=8)


@st.composite
def then_for(draw: Draw, stage: str) -> dict[str, Any]:
    priorities = [p.value for p in Priority]
    if stage == "input":
        action = draw(st.sampled_from(("escalate", "escalate", "set_priority", "tag")))
    else:
        action = draw(st.sampled_from(("block", "block", "tag")))
    then: dict[str, Any] = {"action": action}
    if action in ("escalate", "block"):
        reasons = INPUT_REASONS if stage == "input" else OUTPUT_REASONS
        then["reason"] = draw(st.sampled_from(sorted(reasons)))
        if draw(st.booleans()):
            then["urgency"] = draw(st.sampled_from(priorities))
    elif action == "set_priority":
        then["priority"] = draw(st.sampled_from(priorities))
    else:
        then["tag"] = draw(st.sampled_from(("billing", "vip", "angry", "legal_hold")))
    return then


@st.composite
def rule_dicts(draw: Draw, max_rules: int = 8) -> list[RuleDict]:
    count = draw(st.integers(1, max_rules))
    rules = []
    for i in range(count):
        stage = draw(st.sampled_from(("input", "output")))
        rule: RuleDict = {
            "id": f"rule-{i}",
            "stage": stage,
            "description": f"generated rule {i}",
            "when": draw(conditions()),
            "then": draw(then_for(stage)),
        }
        if draw(st.integers(0, 9)) == 0:
            rule["enabled"] = False
        rules.append(rule)
    return rules


def files_for(rules: list[RuleDict], parts: int = 1) -> list[tuple[str, str]]:
    """Spread rules over `parts` YAML files named in load order."""
    chunks = [rules[i::parts] for i in range(parts)]
    return [
        (f"{i:02d}-generated.yaml", yaml.safe_dump({"rules": chunk}, sort_keys=False))
        for i, chunk in enumerate(chunks)
        if chunk
    ]


@st.composite
def rule_files(draw: Draw, max_rules: int = 8) -> list[tuple[str, str]]:
    """Random rule files (name, YAML) that load and stay within the durable_rules limits.

    Files, not a RuleSet, are what a failing example prints: short and replayable.
    """
    files = files_for(draw(rule_dicts(max_rules)), draw(st.integers(1, 3)))
    ruleset = build_ruleset(files)
    try:
        check_limits(ruleset.input)
        check_limits(ruleset.output)
    except RuleLimitError:
        assume(False)
    return files


def rule_sets(max_rules: int = 8) -> st.SearchStrategy[RuleSet]:
    """A compiled RuleSet within the durable_rules limits the engine enforces."""
    return rule_files(max_rules).map(build_ruleset)


@st.composite
def vocabulary_message(draw: Draw) -> str:
    """Text built from the rule vocabulary, so generated rules actually fire."""
    words = draw(st.lists(st.sampled_from(VOCABULARY + PHRASES + FILLER), min_size=0, max_size=10))
    text = " ".join(words)
    if draw(st.booleans()):
        text = draw(st.sampled_from(SEPARATORS)).join(
            draw(decorated_phrase(w)) if draw(st.booleans()) else w for w in words
        )
    return text
