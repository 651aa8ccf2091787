"""Server-side template injection: the known payloads are refused, nothing leaks.

Each payload is tried at save (compile_template) and, when saving let it through, at
render; the result must be an InvalidInput or a harmless render without internals.
"""

from __future__ import annotations

import pytest

from courriel.errors import InvalidInput
from courriel.marketing.templates import Renderer, compile_template
from courriel.marketing.templates.sample import sample_context

PAYLOADS = [
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ ().__class__.__base__.__subclasses__() }}",
    "{{ cycler.__init__.__globals__.os }}",
    "{{ joiner.__init__.__globals__ }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ lipsum.__globals__['os'].popen('id').read() }}",
    "{{ self._TemplateReference__context }}",
    "{{ self.__init__.__globals__ }}",
    "{{ request.application.__globals__ }}",
    "{{ config.items() }}",
    "{{ url_for.__globals__ }}",
    "{{ contact|attr('__class__') }}",
    "{{ contact|attr('__class__')|attr('__mro__') }}",
    "{{ '{0.__class__}'.format(contact) }}",
    "{{ '{0.__class__.__init__.__globals__}'.format(contact.email) }}",
    "{{ '%s'.format_map(contact) }}",
    "{{ contact.email.__class__ }}",
    "{{ recommendations.__globals__ }}",
    "{{ recommendations.__closure__ }}",
    "{{ shop.__class__.__init__ }}",
    "{{ dict.__base__.__subclasses__() }}",
    "{{ range.__class__ }}",
    "{{ contact.update({'email': 'x'}) }}",
    "{% set x = contact.attributes.setdefault('a', 1) %}",
    "{{ 'a' * 10 ** 9 }}",
    "{{ [1] * 10 ** 8 }}",
    "{{ 9 ** 9 ** 9 }}",
    "{% for i in range(10 ** 9) %}x{% endfor %}",
    "{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}",
    "{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}",
    "{% set a = 'x' * 500000 %}{{ a ~ a ~ a }}",
    "{{ 'x' | center(10 ** 6) }}",
    "{{ '%999999999s' | format(1) }}",
    "{{ 'x' * 1000 | replace('', 'y' * 1000) }}",
    "{{ 'x'.center(10) }}",
    "{{ [1] | batch(10 ** 9, 0) | list }}",
    "{{ data.when | date('%1000000000Y') }}",
]
LEAKS = ("<class", "__", "function", "module", "builtins", "Undefined", "jinja2", "object at")


@pytest.mark.parametrize("payload", PAYLOADS)
def test_payload_is_refused_or_harmless(payload: str) -> None:
    try:
        html = compile_template("html", f"<p>{payload}</p>")
    except InvalidInput as exc:
        assert exc.field == "source"
        assert str(exc).startswith("line 1, column ")
        return
    # Saved: it must render to nothing that shows Python internals, for any data.
    ctx = sample_context(data={"when": "2026-01-01"})
    try:
        out = Renderer(html, "").render(ctx).html
    except InvalidInput:
        return
    assert not any(leak in out for leak in LEAKS), out


@pytest.mark.parametrize("payload", ["{{ ''.__class__ }}", "{{ cycler }}", "{{ request }}"])
def test_payloads_in_subjects_are_refused(payload: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        Renderer("<p>x</p>", payload).render(sample_context())
    assert caught.value.field == "subject"


def test_a_refusal_names_no_internals() -> None:
    with pytest.raises(InvalidInput) as caught:
        compile_template("html", "<p>{{ cycler.__init__.__globals__ }}</p>")
    assert "__globals__" not in str(caught.value) or "not available" in str(caught.value)
    assert "jinja2" not in str(caught.value) and "/" not in str(caught.value)
