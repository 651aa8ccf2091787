"""compile_template: MJML and HTML to stored HTML, errors at the user's line and column."""

from __future__ import annotations

import pytest
from tests.unit.marketing.templates.sources import NEWSLETTER

from courriel.errors import InvalidInput
from courriel.marketing.templates import Renderer, compile_template
from courriel.marketing.templates.sample import sample_context


def _refused(kind: str, source: str) -> str:
    with pytest.raises(InvalidInput) as caught:
        compile_template(kind, source)  # type: ignore[arg-type]
    assert caught.value.field == "source"
    return str(caught.value)


def test_jinja_tags_survive_mjml_compilation() -> None:
    html = compile_template("mjml", NEWSLETTER)
    assert '{{ contact.first_name | default("there") }}' in html
    assert '{% for p in recommendations("best_sellers", 3) %}' in html
    assert '<a href="{{ p.url }}">{{ p.title }}</a>' in html
    assert 'href="{{ shop.url }}/sale"' in html
    assert "<mjml" not in html and "mj-section" not in html
    assert "cjt0" not in html  # every placeholder put back


def test_remote_fonts_are_stripped() -> None:
    html = compile_template("mjml", NEWSLETTER)
    assert "fonts.googleapis.com" not in html
    assert "@import" not in html


def test_a_comparison_inside_mjml_text_compiles() -> None:
    # A raw "<" in a tag would break the MJML parse if the tags went through mrml.
    source = (
        "<mjml><mj-body><mj-section><mj-column>"
        "<mj-text>{% if contact.tags | length < 2 %}few{% endif %}</mj-text>"
        "</mj-column></mj-section></mj-body></mjml>"
    )
    assert "{% if contact.tags | length < 2 %}" in compile_template("mjml", source)


def test_html_kind_is_stored_as_written() -> None:
    source = "<html><body><p>Hi {{ contact.first_name }}</p></body></html>"
    assert compile_template("html", source) == source


def test_unknown_kind_and_empty_source() -> None:
    with pytest.raises(InvalidInput) as caught:
        compile_template("text", "x")  # type: ignore[arg-type]
    assert caught.value.field == "kind"
    assert "needs a source" in _refused("html", "  \n")


def test_mjml_unclosed_tag_points_at_it() -> None:
    source = NEWSLETTER.replace(
        '<mj-button href="{{ shop.url }}/sale">Shop the sale</mj-button>\n    </mj-column>',
        '<mj-button href="{{ shop.url }}/sale">Shop the sale</mj-button>\n',
    )
    lines = source.split("\n")
    row = next(i for i, line in enumerate(lines) if "Shop the sale" in line)
    # The section holding the button has its column left open.
    message = _refused("mjml", source)
    assert message.startswith(f"line {row}, column 17: <mj-column> is not closed"), message


def test_mjml_garbage_after_the_root_is_located() -> None:
    source = "<mjml><mj-body>\n<mj-text>x</mj-text>\n</mj-body></mjml>\n<oops"
    message = _refused("mjml", source)
    assert message.startswith("line 4, column 1:"), message


def test_jinja_syntax_error_line_in_html() -> None:
    source = "<p>one</p>\n<p>two</p>\n<p>{{ contact.first_name | }}</p>\n"
    message = _refused("html", source)
    assert message.startswith("line 3, column 4:"), message


def test_jinja_syntax_error_line_in_mjml_is_the_source_line() -> None:
    source = NEWSLETTER.replace("{{ p.title }}", "{{ p.title ) }}")
    row = next(i for i, line in enumerate(source.split("\n"), 1) if "p.title )" in line)
    message = _refused("mjml", source)
    assert message.startswith(f"line {row}, column "), message
    assert row != 1


def test_calling_an_undefined_is_refused_at_its_line() -> None:
    source = "<p>a</p>\n<p>b</p>\n<p>{{ contact.first_name.shout() }}</p>"
    message = _refused("html", source)
    assert message.startswith("line 3, column 26:"), message  # at "shout"


def test_render_error_in_mjml_maps_to_the_source_line() -> None:
    # Jinja knows only the compiled HTML line (mrml writes one long line): the error must
    # name the MJML line holding the failing expression, not line 1.
    source = NEWSLETTER.replace("{{ p.title }}", "{{ p.title.upper(1) }}")
    row = next(i for i, line in enumerate(source.split("\n"), 1) if "upper(1)" in line)
    message = _refused("mjml", source)
    assert message.startswith(f"line {row}, "), message
    assert "upper" in message


def test_unknown_variable_is_refused_with_its_name() -> None:
    source = "<p>x</p>\n\n<p>{{ customer.name }}</p>"
    message = _refused("html", source)
    assert message.startswith("line 3, column 7: unknown variable 'customer'"), message


def test_bad_recommendations_calls() -> None:
    assert "needs a constant kind" in _refused("html", '{{ recommendations("nope", 3) }}')
    assert "at most 24" in _refused("html", '{{ recommendations("best_sellers", 99) }}')


def test_a_tag_mrml_drops_is_refused_where_it_is() -> None:
    source = (
        "<mjml><mj-head><mj-attributes>\n"
        '  <mj-class name="{{ contact.email }}" color="red" />\n'
        "</mj-attributes></mj-head><mj-body></mj-body></mjml>"
    )
    message = _refused("mjml", source)
    assert message.startswith("line 2, column 19: this template tag is lost"), message


def test_mrml_position_maps_back_through_multiline_tags() -> None:
    # The placeholder of a two-line tag is one line: the error's line must still be the
    # source's.
    source = (
        "<mjml><mj-body><mj-section><mj-column><mj-text>{% if\n contact.city %}x{% endif %}"
        "</mj-text></mj-column></mj-section></mj-body></mjml>\n<mj-text>"
    )
    message = _refused("mjml", source)
    assert message.startswith("line 3, column 1:"), message


def test_compiled_newsletter_renders() -> None:
    html = compile_template("mjml", NEWSLETTER)
    out = Renderer(html, "Hi {{ contact.first_name }}").render(sample_context())
    assert out.subject == "Hi Jane"
    assert "Hello Jane," in out.html
    assert "News for Paris!" in out.html
    assert out.html.count("Sample product") == 3


def test_crlf_line_breaks_compile_like_lf() -> None:
    """A source typed in a browser's textarea arrives with CRLF line breaks (mrml refuses a
    CR between the tags of <mj-head>); it compiles to what its LF form compiles to, and an
    error still names the source's own line."""
    source = (
        "<mjml>\n  <mj-head>\n    <mj-title>Hi</mj-title>\n  </mj-head>\n  <mj-body>\n"
        "    <mj-section><mj-column><mj-text>Hello {{ contact.first_name }}</mj-text>"
        "</mj-column></mj-section>\n  </mj-body>\n</mjml>\n"
    )
    assert compile_template("mjml", source.replace("\n", "\r\n")) == compile_template(
        "mjml", source
    )
    broken = source.replace("{{ contact.first_name }}", "{{ contact.first_name ")
    with pytest.raises(InvalidInput) as caught:
        compile_template("mjml", broken.replace("\n", "\r\n"))
    assert str(caught.value).startswith("line 6")
