"""Fuzzing template compilation and rendering (conventions §9).

compile_template and Renderer may only raise InvalidInput (with a line and column),
whatever MJML, HTML or Jinja they are given.
"""

from __future__ import annotations

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from courriel.errors import InvalidInput
from courriel.marketing.templates import Renderer, compile_template
from courriel.marketing.templates.sample import sample_context

PIECES = st.sampled_from(
    ["<mjml>", "</mjml>", "<mj-body>", "</mj-body>", "<mj-section>", "</mj-section>",
     "<mj-column>", "</mj-column>", "<mj-text>", "</mj-text>", "<mj-raw>", "</mj-raw>",
     "<mj-button href=\"", "\">", "</mj-button>", "<mj-image src=\"x\" />", "<p>", "</p>",
     "{{ contact.first_name }}", "{{ ", " }}", "{% if contact.city %}", "{% endif %}",
     "{% for p in recommendations(\"best_sellers\", 3) %}", "{% endfor %}", "{{ p.title }}",
     "{% ", " %}", "{# c #}", "|money", "|default('x')", "(", ")", "'", "\"", "<", ">", "&",
     "\n", " ", "x", "{{ 1/0 }}", "{{ contact.x() }}", "{{ ''.__class__ }}"]
)  # fmt: skip
LOCATED = re.compile(r"^line \d+, column \d+: ")


def _check(kind: str, source: str) -> None:
    try:
        html = compile_template(kind, source)  # type: ignore[arg-type]
    except InvalidInput as exc:
        assert exc.field in ("source", "kind")
        assert exc.field == "kind" or LOCATED.match(str(exc)) or "needs a source" in str(exc)
        return
    try:
        Renderer(html, "").render(sample_context())
    except InvalidInput as exc:
        assert LOCATED.match(str(exc))


@given(st.lists(PIECES, max_size=40).map("".join), st.sampled_from(["mjml", "html"]))
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_pieces(source: str, kind: str) -> None:
    _check(kind, source)


@given(st.text(max_size=200), st.sampled_from(["mjml", "html"]))
@settings(max_examples=200, deadline=None)
def test_any_text(source: str, kind: str) -> None:
    _check(kind, source)


@given(st.text(max_size=100))
@settings(max_examples=200, deadline=None)
def test_any_subject(subject: str) -> None:
    try:
        Renderer("<p>x</p>", subject).render(sample_context())
    except InvalidInput as exc:
        assert exc.field == "subject"
