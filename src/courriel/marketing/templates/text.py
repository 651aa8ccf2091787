"""The plain-text part of an email, made from its HTML.

Owns :func:`html_to_text`: paragraphs and headings become blocks separated by a blank
line, ``<br>`` a line break, list items "- item" lines, table cells are separated by
spaces and rows by line breaks, links "text (url)" (just the url when the text is the url),
images their alt text; nothing inside ``<head>``, ``<style>``, ``<script>`` or ``<title>``
and nothing hidden with ``display:none`` (the preheader) is kept. Whitespace is collapsed
as a browser would. Invariant: it never raises, whatever string it is given (fuzzed).
"""

from __future__ import annotations

import re
from html import unescape

__all__ = ["html_to_text"]

_SKIP = frozenset({"head", "style", "script", "title", "template", "noscript"})
_BLOCKS = frozenset(
    {"p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol", "blockquote",
     "section", "article", "header", "footer", "pre", "hr", "center"}
)  # fmt: skip
_VOID = frozenset({"br", "img", "hr", "meta", "link", "input", "area", "base", "col", "wbr"})
_SPACES = re.compile(r"[ \t\r\n\f\v\u00a0]+")
_BODY_START = re.compile(r"<body\b", re.IGNORECASE)
_HIDDEN = re.compile(r"display\s*:\s*none", re.IGNORECASE)
_BREAK = "\x00"  # a hard line break, kept through the whitespace collapse
_PARAGRAPH = "\x01"  # a block boundary


# One pass of one regular expression over the document: comments and declarations, tags
# (with their raw attribute text), and text. The stdlib's html.parser took 8-12 ms of a
# 14 KB newsletter (docs/templates.md, Performance); this tokenizer reads only the
# attributes it needs (href, alt, style) and only on the tags that use them.
_TOKENS = re.compile(
    r"<!--.*?(?:-->|$)|<![^>]*>?|<\?[^>]*>?"  # comments, doctype/CDATA, processing instructions
    r"|<(/?)([a-zA-Z][a-zA-Z0-9:-]*)((?:[^>\"']|\"[^\"]*\"|'[^']*')*)>"  # a tag
    r"|([^<]+|<)",  # text (a lone "<" is text too)
    re.DOTALL,
)
_ATTR = re.compile(r"""([^\s/>"'=]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+)))?""")
_NEEDS_ATTRS = frozenset({"a", "img"})


def _attrs(raw: str) -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for match in _ATTR.finditer(raw):
        name = match.group(1).lower()
        if name in found:
            continue
        value = match.group(2)
        if value is None:
            value = match.group(3)
        if value is None:
            value = match.group(4)
        found[name] = None if value is None else unescape(value)
    return found


class _Collector:
    def __init__(self) -> None:
        self.parts: list[str] = []
        self.skip_depth = 0  # inside head/style/script or a hidden element
        self.stack: list[tuple[str, bool]] = []  # (tag, opened a skip)
        self.open_count: dict[str, int] = {}  # tag -> how many are on the stack
        self.links: list[tuple[str | None, int]] = []  # (href, index of the text start)

    def feed(self, html: str) -> None:
        for match in _TOKENS.finditer(html):
            text = match.group(4)
            if text is not None:
                if not self.skip_depth:
                    self.parts.append(unescape(text) if "&" in text else text)
                continue
            tag = match.group(2)
            if tag is None:
                continue  # a comment, a declaration or a processing instruction
            if not tag.islower():
                tag = tag.lower()
            if match.group(1):
                self.handle_endtag(tag)
                continue
            raw = match.group(3)
            self.handle_starttag(tag, raw)
            if raw and raw[-1] == "/" and tag not in _VOID:
                self.handle_endtag(tag)

    def handle_starttag(self, tag: str, raw: str) -> None:
        found = _attrs(raw) if tag in _NEEDS_ATTRS or "ISPLAY" in raw.upper() else {}
        hidden = tag in _SKIP or bool(_HIDDEN.search(found.get("style") or ""))
        if tag not in _VOID:
            self.stack.append((tag, hidden))
            self.open_count[tag] = self.open_count.get(tag, 0) + 1
            if hidden:
                self.skip_depth += 1
        if self.skip_depth or hidden:
            return
        self._open(tag, found)

    def _open(self, tag: str, attrs: dict[str, str | None]) -> None:
        if tag == "br":
            self.parts.append(_BREAK)
        elif tag in _BLOCKS:
            self.parts.append(_PARAGRAPH)
        elif tag == "li":
            self.parts.append(_BREAK + "- ")
        elif tag == "tr":
            self.parts.append(_BREAK)
        elif tag in ("td", "th"):
            self.parts.append(" ")
        elif tag == "img" and attrs.get("alt"):
            self.parts.append(f" {attrs['alt']} ")
        elif tag == "a":
            self.links.append((attrs.get("href"), len(self.parts)))

    def handle_endtag(self, tag: str) -> None:
        if not self.open_count.get(tag):
            return
        while self.stack:
            open_tag, hidden = self.stack.pop()
            self.open_count[open_tag] -= 1
            if hidden:
                self.skip_depth -= 1
            elif not self.skip_depth:
                self._close(open_tag)
            if open_tag == tag:
                break

    def _close(self, tag: str) -> None:
        if tag in _BLOCKS:
            self.parts.append(_PARAGRAPH)
        elif tag == "a" and self.links:
            href, start = self.links.pop()
            label = _SPACES.sub(" ", "".join(self.parts[start:])).strip()
            if href and href.startswith(("http:", "https:", "mailto:")) and href != label:
                target = href.removeprefix("mailto:") if href.startswith("mailto:") else href
                self.parts.append(f" ({target})" if label else target)

    def handle_data(self, data: str) -> None:
        if not self.skip_depth:
            self.parts.append(data)


def _layout(raw: str) -> str:
    text = _SPACES.sub(" ", raw)
    blocks = []
    for block in text.split(_PARAGRAPH):
        lines = [line.strip() for line in block.split(_BREAK)]
        # Runs of empty lines inside a block (empty rows, <br><br>) count as one.
        kept: list[str] = []
        for line in lines:
            if line or (kept and kept[-1]):
                kept.append(line)
        cleaned = "\n".join(kept).strip("\n")
        if cleaned:
            blocks.append(cleaned)
    return "\n\n".join(blocks) + ("\n" if blocks else "")


def html_to_text(html: str) -> str:
    """The readable text of an HTML document (see the module docstring)."""
    collector = _Collector()
    # Nothing before the body is text: skip parsing the head (styles, MSO blocks).
    body = _BODY_START.search(html)
    collector.feed(html[body.start() :] if body else html)
    while collector.links:
        collector._close("a")
    return _layout("".join(collector.parts))
