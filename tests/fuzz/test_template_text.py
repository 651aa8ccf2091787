"""Fuzzing html_to_text (conventions §9): it never raises, on any string."""

from __future__ import annotations

import re

from hypothesis import example, given, settings
from hypothesis import strategies as st

from courriel.marketing.templates.text import html_to_text

PIECES = st.sampled_from(
    ["<p>", "</p>", "<br>", "<a href='https://x.example'>", "</a>", "<li>", "<ul>", "</ul>",
     "<style>", "</style>", "<div style='display:none'>", "</div>", "<img alt='a'>", "&amp;",
     "&#0;", "&#xD800;", "<!--", "-->", "<![CDATA[", "]]>", "<", ">", "text", " ", "\n"]
)  # fmt: skip

OPEN_TAG_AT_END = re.compile(r"</?[A-Za-z][^>]*\Z")


@given(st.text())
@settings(max_examples=300)
def test_any_text(html: str) -> None:
    assert isinstance(html_to_text(html), str)


@given(st.lists(PIECES, max_size=60).map("".join))
@example("<text")  # found by this test on 2026-11-28: an open tag, not a leaked style
@settings(max_examples=300)
def test_markup_soup(html: str) -> None:
    text = html_to_text(html)
    # A closed style block never shows. An unclosed comment may hold its text verbatim,
    # and a tag left open at the end takes "<style" into its name or attributes, as in a
    # browser (HTML5 §13.2.5.8 tag name state: "<text<style>" is one start tag).
    unclosed = "<!--" in html or "<![" in html or OPEN_TAG_AT_END.search(html) is not None
    assert unclosed or "p{x}" not in html_to_text(html + "<style>p{x}</style>")
    assert isinstance(text, str)
