"""Inbound email clean-up: only what the customer wrote in this email reaches the agent,
not the quoted thread below it. Parsing what arrives, not formatting what we send."""

from __future__ import annotations

import re

from fte_core.formatting import collapse_blank_lines

# Lines that start the quoted history: everything from them on is dropped.
_QUOTE_HEADERS = (
    re.compile(r"^\s*On\b.{0,300}\bwrote:\s*$", re.S),  # Gmail, Apple Mail (may wrap)
    re.compile(r"^\s*Le\b.{0,300}\ba écrit\s*:\s*$", re.S),
    re.compile(r"^\s*Am\b.{0,300}\bschrieb.{0,80}:\s*$", re.S),
    re.compile(r"^\s*El\b.{0,300}\bescribió:\s*$", re.S),
    re.compile(r"^\s*-{2,}\s*Original Message\s*-{2,}\s*$", re.I),
    re.compile(r"^\s*_{10,}\s*$"),  # Outlook separator line above the From: block
    re.compile(r"^\s*-- ?$"),  # RFC 3676 signature delimiter
    re.compile(r"^\s*(Sent from my \w+|Get Outlook for \w+)", re.I),
)
_OUTLOOK_FROM = re.compile(r"^\s*\*?From:\*?\s", re.I)
_OUTLOOK_NEXT = re.compile(r"^\s*\*?(Sent|Date|To|Subject):\*?\s", re.I)


def strip_quoted_history(text: str) -> str:
    """Keep only what the customer wrote in this email.

    Drops the quoted thread below "On ... wrote:" (also wrapped over two lines and in a
    few languages), "-----Original Message-----", Outlook's From:/Sent: header block,
    the signature, and any line quoted with ">". Returns the original (trimmed) text
    when stripping would leave nothing, so a message is never emptied.
    """
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    kept: list[str] = []
    for index, line in enumerate(lines):
        if _starts_history(lines, index):
            break
        if not line.lstrip().startswith(">"):
            kept.append(line)
    result = collapse_blank_lines("\n".join(kept))
    return result or text.strip()


def _starts_history(lines: list[str], index: int) -> bool:
    line = lines[index]
    two = line + " " + lines[index + 1] if index + 1 < len(lines) else line
    for pattern in _QUOTE_HEADERS:
        if pattern.search(line) or (
            line.lstrip().startswith(("On ", "Le ", "Am ", "El ")) and pattern.search(two)
        ):
            return True
    if _OUTLOOK_FROM.search(line):
        following = lines[index + 1 : index + 4]
        return any(_OUTLOOK_NEXT.search(nxt) for nxt in following)
    return False
