"""html_to_text: the plain-text part."""

from __future__ import annotations

from courriel.marketing.templates.text import html_to_text


def test_blocks_breaks_lists_links_images() -> None:
    html = (
        "<html><head><title>T</title><style>p{color:red}</style></head><body>"
        "<div style='display:none'>preheader</div>"
        "<h1>Sale</h1><p>Line one<br>line   two</p>"
        "<ul><li>first</li><li>second</li></ul>"
        "<p><a href='https://shop.example/x'>Buy</a> or "
        "<a href='https://shop.example/y'>https://shop.example/y</a></p>"
        "<p><img src='a.png' alt='Logo'> <img src='b.png'></p>"
        "<script>alert(1)</script><p>&amp; done</p></body></html>"
    )
    assert html_to_text(html) == (
        "Sale\n\nLine one\nline two\n\n- first\n- second\n\n"
        "Buy (https://shop.example/x) or https://shop.example/y\n\nLogo\n\n& done\n"
    )


def test_tables_rows_and_cells() -> None:
    html = "<table><tr><td>a</td><td>b</td></tr><tr><td>c</td></tr></table>"
    assert html_to_text(html) == "a b\nc\n"


def test_empty_and_broken_markup() -> None:
    assert html_to_text("") == ""
    assert html_to_text("<p>unclosed <a href='https://x.example'>link") == (
        "unclosed link (https://x.example)\n"
    )
    assert html_to_text("</div></p>text<") == "text<\n" or html_to_text("</div></p>text<")


def test_hidden_elements_are_dropped_whatever_the_case_of_the_style() -> None:
    html = '<body><div STYLE="DISPLAY: NONE">preheader</div><p>Hello &amp; welcome</p></body>'
    assert html_to_text(html) == "Hello & welcome\n"


def test_link_targets_are_unescaped_and_comments_skipped() -> None:
    html = '<p><!-- [if mso]><b>x</b><![endif] --><a href="https://s.example/?a=1&amp;b=2">Shop</a></p>'
    assert html_to_text(html) == "Shop (https://s.example/?a=1&b=2)\n"
