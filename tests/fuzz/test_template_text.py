"""Fuzzing html_to_text (conventions §9): it never raises, on any string."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from courriel.marketing.templates.text import html_to_text

PIECES = st.sampled_from(
    ["<p>", "</p>", "<br>", "<a href='https://x.example'>", "</a>", "<li>", "<ul>", "</ul>",
     "<style>", "</style>", "<div style='display:none'>", "</div>", "<img alt='a'>", "&amp;",
     "&#0;", "&#xD800;", "<!--", "-->", "<![CDATA[", "]]>", "<", ">", "text", " ", "\n"]
)  # fmt: skip


@given(st.text())
@settings(max_examples=300)
def test_any_text(html: str) -> None:
    assert isinstance(html_to_text(html), str)


@given(st.lists(PIECES, max_size=60).map("".join))
@settings(max_examples=300)
def test_markup_soup(html: str) -> None:
    text = html_to_text(html)
    # A closed style block never shows (an unclosed comment may hold its text verbatim).
    unclosed = "<!--" in html or "<![" in html
    assert unclosed or "p{x}" not in html_to_text(html + "<style>p{x}</style>")
    assert isinstance(text, str)
