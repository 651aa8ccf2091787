"""Renderer: personalisation, filters, preheader, CSS inlining, text part, limits."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
from tests.unit.marketing.templates.sources import NEWSLETTER

from courriel.errors import InvalidInput
from courriel.marketing.templates import Renderer, compile_template
from courriel.marketing.templates.sample import SAMPLE_CONTACT, sample_context, sample_products


def _inner(html: str) -> str:
    """The body of a rendered document (css-inline makes a fragment a whole document)."""
    return html.split("<body>", 1)[1].rsplit("</body>", 1)[0]


def _render(body: str, **contact: object) -> str:
    ctx = sample_context(contact={**SAMPLE_CONTACT, **contact})
    return _inner(Renderer(body, "").render(ctx).html)


def test_personalised_subject_preheader_and_body() -> None:
    renderer = Renderer(
        "<html><body><p>Hi {{ contact.first_name }}</p></body></html>",
        "{{ contact.first_name | default('Friend') }}, 20% off",
        "Only for {{ contact.city }}",
    )
    out = renderer.render(sample_context())
    assert out.subject == "Jane, 20% off"
    assert out.html.index("Only for Paris") < out.html.index("Hi Jane")
    assert "display:none" in out.html
    assert out.text == "Hi Jane\n"  # the hidden preheader stays out of the text part


def test_default_covers_missing_none_and_empty() -> None:
    body = "{{ contact.first_name | default('there') }}"
    assert _render(body, first_name=None) == "there"
    assert _render(body, first_name="") == "there"
    assert _render(body, first_name="Ann") == "Ann"
    assert _render("{{ contact.attributes.vip.level | default('none') }}") == "none"
    assert _render("[{{ contact.phone }}]", phone=None) == "[]"  # None prints as nothing


def test_autoescape_in_html_not_in_subject() -> None:
    renderer = Renderer("<p>{{ contact.first_name }}</p>", "{{ contact.first_name }}")
    ctx = sample_context(contact={**SAMPLE_CONTACT, "first_name": "<b>Tom & Jerry</b>"})
    out = renderer.render(ctx)
    assert "&lt;b&gt;Tom &amp; Jerry&lt;/b&gt;" in out.html
    assert out.subject == "<b>Tom & Jerry</b>"


def test_money_and_date_filters() -> None:
    assert _render("{{ 1250 | money }}") == "€12.50"
    assert _render("{{ 123456 | money('USD') }}") == "$1,234.56"
    assert _render("{{ 1250 | money('EUR', 'fr') }}") == "12,50 €"
    assert _render("{{ 500 | money('JPY') }}") == "¥500"
    assert _render("{{ -99 | money('GBP') }}") == "-£0.99"
    ctx = sample_context(data={"when": datetime(2026, 3, 1, 9, 5, tzinfo=UTC)})
    renderer = Renderer(
        "{{ data.when | date }}|{{ data.when | date('short') }}|{{ data.when | date('%H:%M') }}"
        "|{{ '2026-12-24' | date('long') }}",
        "",
    )
    assert _inner(renderer.render(ctx).html) == "1 Mar 2026|2026-03-01|09:05|24 December 2026"


def test_css_inlined_after_render_and_media_queries_kept() -> None:
    html = compile_template("mjml", NEWSLETTER)
    out = Renderer(html, "").render(sample_context())
    assert "@media (max-width: 480px)" in out.html
    assert 'class="promo"' in out.html and "color: #c00" in out.html.split("</head>")[1]


def test_text_part_has_links_and_products() -> None:
    html = compile_template("mjml", NEWSLETTER)
    text = Renderer(html, "").render(sample_context()).text
    assert "Hello Jane," in text
    assert "Sample product 1 (https://shop.example/products/sample-1) €12.50" in text
    assert "Unsubscribe (https://mail.example/u/sample)" in text
    assert "<" not in text and "{{" not in text


def test_recommendation_calls_are_read_from_the_template() -> None:
    renderer = Renderer(
        '{% for p in recommendations("best_sellers", 3) %}{{ p.title }}{% endfor %}'
        '{% set k = 2 %}{{ recommendations("same_category", k) | length }}',
        '{{ recommendations("recently_viewed", 1)[0].title }}',
    )
    assert renderer.recommendation_calls == {
        ("best_sellers", 3),
        ("same_category", 0),
        ("recently_viewed", 1),
    }


def test_recommendations_come_from_the_context() -> None:
    asked: list[tuple[str, int]] = []

    def recommend(kind: str, n: int) -> list[dict[str, object]]:
        asked.append((kind, n))
        return list(sample_products(kind, n))

    renderer = Renderer(
        '{% for p in recommendations("bought_together", 2) %}[{{ p.id }}]{% endfor %}', ""
    )
    ctx = sample_context()
    from dataclasses import replace

    assert _inner(renderer.render(replace(ctx, recommendations=recommend)).html) == "[1][2]"
    assert asked == [("bought_together", 2)]


def test_output_over_the_cap_is_refused() -> None:
    body = "{% for i in range(9000) %}{{ 'x' * 999 }}{% endfor %}"
    with pytest.raises(InvalidInput) as caught:
        Renderer(body, "").render(sample_context())
    assert "over 5 MB" in str(caught.value)


def test_subject_error_is_on_the_subject_field() -> None:
    with pytest.raises(InvalidInput) as caught:
        Renderer("<p>x</p>", "{{ contact.first_name ")
    assert caught.value.field == "subject"
    assert str(caught.value).startswith("line 1, column 1:")


def test_one_renderer_serves_many_threads() -> None:
    renderer = Renderer("<p>{{ contact.first_name }}</p>", "{{ contact.email }}")
    names = [f"n{i}" for i in range(200)]

    def one(name: str) -> tuple[str, str]:
        contact = {**SAMPLE_CONTACT, "first_name": name, "email": f"{name}@example.test"}
        out = renderer.render(sample_context(contact=contact))
        return _inner(out.html), out.subject

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(one, names))
    assert results == [(f"<p>{n}</p>", f"{n}@example.test") for n in names]
