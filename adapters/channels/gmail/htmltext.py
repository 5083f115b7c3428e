"""HTML mail bodies as plain text: what a person reading the mail sees, in order.

Block elements become line breaks, list items get a dash, quoted blocks (`<blockquote>`,
Gmail's `gmail_quote`) get "> " line prefixes so the lifecycle's quoted-history stripping
recognises them; scripts, styles and the head are dropped; entities are decoded.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

_BLOCKS = frozenset(
    {
        "address", "article", "aside", "div", "dl", "dt", "dd", "fieldset", "figure",
        "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "main",
        "nav", "ol", "p", "pre", "section", "table", "tr", "ul",
    }
)  # fmt: skip
_HIDDEN = frozenset({"script", "style", "head", "title", "template"})
_VOID = frozenset({"br", "hr", "img", "meta", "link", "input", "wbr", "col", "area", "base"})
_SPACES = re.compile(r"[ \t\f\v\u00a0]+")
_MANY_NEWLINES = re.compile(r"\n{3,}")


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self.current: list[str] = []
        self.hidden = 0
        self.quote = 0
        self.open_tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN:
            self.hidden += 1
        elif tag == "br":
            self.newline(force=True)
        elif tag == "li":
            self.newline()
            self.current.append("- ")
        elif tag == "blockquote":
            self.newline()
            self.quote += 1
        elif tag in _BLOCKS or tag == "td":
            self.newline() if tag != "td" else self.current.append(" ")
        if tag not in _VOID:
            self.open_tags.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag not in self.open_tags:
            return  # a stray end tag closes nothing
        while self.open_tags:
            opened = self.open_tags.pop()
            self.close_tag(opened)
            if opened == tag:
                break

    def close_tag(self, tag: str) -> None:
        if tag in _HIDDEN:
            self.hidden = max(0, self.hidden - 1)
        elif tag == "blockquote":
            self.newline()
            self.quote = max(0, self.quote - 1)
        elif tag in _BLOCKS or tag == "li":
            self.newline()

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.current.append(data)

    def newline(self, *, force: bool = False) -> None:
        line = _SPACES.sub(" ", "".join(self.current).replace("\n", " ").replace("\r", " "))
        line = line.strip()
        self.current = []
        if line or force:
            self.lines.append("> " * self.quote + line if line else "")


def html_to_text(html: str) -> str:
    """The readable text of an HTML body (never raises on malformed markup)."""
    parser = _Text()
    parser.feed(html)
    parser.close()
    parser.newline()
    text = "\n".join(parser.lines)
    return _MANY_NEWLINES.sub("\n\n", text).strip()
