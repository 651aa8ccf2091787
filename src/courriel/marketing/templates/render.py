"""Rendering one email per recipient from a compiled template.

Owns :class:`Renderer`: a template's HTML (Jinja in it, as stored in ``templates.html``),
subject and preheader compiled once, then :meth:`Renderer.render` for every recipient:
Jinja in the sandbox of :mod:`.env` (autoescaped HTML; subject and preheader as plain
text), the preheader as a hidden block at the top of the body, CSS inlined with
``css-inline`` *after* rendering (inlining before would break template tags; remote
stylesheets are never fetched and ``<style>`` blocks are kept so media queries still
apply), and the text part made from the HTML (:func:`.text.html_to_text`).

Invariants:
- A Renderer holds no per-render state: one instance serves many threads at once.
- A render never returns more than :data:`MAX_OUTPUT` characters of HTML and never runs
  more than the step budget of :mod:`.env`; anything a template does wrong is an
  ``InvalidInput`` with the line and column, never another exception.
- Only the names of :data:`CONTEXT_NAMES` (and Jinja's ``range``/``dict``) exist in a
  template; any other name is refused when the Renderer is built.
"""

from __future__ import annotations

import html as html_lib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import css_inline
from jinja2 import Template, TemplateError, TemplateSyntaxError, meta, nodes

from courriel.errors import InvalidInput
from courriel.marketing.templates.env import MailEnvironment, budgeted, make_environment
from courriel.marketing.templates.locate import (
    TEMPLATE_NAME,
    at_line,
    runtime_line,
    syntax_error,
)
from courriel.marketing.templates.text import html_to_text

__all__ = [
    "CONTEXT_NAMES",
    "MAX_OUTPUT",
    "MAX_RECOMMENDATIONS",
    "RECOMMENDATION_KINDS",
    "RenderContext",
    "RenderedEmail",
    "Renderer",
]

MAX_OUTPUT = 5_000_000  # characters of rendered HTML
MAX_RECOMMENDATIONS = 24  # the largest n of recommendations(kind, n)
MAX_SUBJECT = 998  # RFC 5322 §2.1.1: a header line is at most 998 characters
RECOMMENDATION_KINDS = frozenset(
    {"best_sellers", "recently_viewed", "bought_together", "same_category"}
)
CONTEXT_NAMES = frozenset(
    {"contact", "shop", "unsubscribe_url", "preferences_url", "view_in_browser_url",
     "recommendations", "data"}
)  # fmt: skip
_BODY = re.compile(r"<body\b[^>]*>", re.IGNORECASE)
_RENDER_ERRORS = (
    TemplateError,
    ArithmeticError,
    LookupError,
    TypeError,
    ValueError,
    RecursionError,
)


def _no_recommendations(kind: str, n: int) -> Sequence[Mapping[str, Any]]:
    return ()


@dataclass(frozen=True, slots=True, kw_only=True)
class RenderContext:
    """Everything one recipient's copy is rendered from."""

    # email, first_name, last_name, phone, country, region, city, postal_code, time_zone,
    # attributes (a mapping), tags (a sequence)
    contact: Mapping[str, Any]
    shop: Mapping[str, Any]  # name, url, address, currency
    unsubscribe_url: str
    preferences_url: str
    view_in_browser_url: str
    # recommendations(kind, n) → products as dicts: id, title, url, image_url, price_minor,
    # currency, category. Called from inside the render: must not do I/O (prefetch).
    recommendations: Callable[[str, int], Sequence[Mapping[str, Any]]] = _no_recommendations
    data: Mapping[str, Any] = field(default_factory=dict)  # a transactional mail's payload


@dataclass(frozen=True, slots=True, kw_only=True)
class RenderedEmail:
    """One recipient's copy: subject, HTML (CSS inlined) and plain text."""

    subject: str
    html: str
    text: str


def _unknown_names(env: MailEnvironment, tree: nodes.Template, source: str, field: str) -> None:
    unknown = meta.find_undeclared_variables(tree) - CONTEXT_NAMES - set(env.globals)
    if not unknown:
        return
    lines = [n.lineno for n in tree.find_all(nodes.Name) if n.name in unknown]
    name = sorted(unknown)[0]
    message = f"unknown variable {name!r} (a template knows {', '.join(sorted(CONTEXT_NAMES))})"
    raise at_line(source, min(lines, default=1), message, field=field)


def _recommendation_calls(tree: nodes.Template, source: str, field: str) -> set[tuple[str, int]]:
    calls: set[tuple[str, int]] = set()
    for call in tree.find_all(nodes.Call):
        if not (isinstance(call.node, nodes.Name) and call.node.name == "recommendations"):
            continue
        kind = call.args[0] if call.args else None
        if not (isinstance(kind, nodes.Const) and kind.value in RECOMMENDATION_KINDS):
            kinds = ", ".join(sorted(RECOMMENDATION_KINDS))
            message = f"recommendations() needs a constant kind: one of {kinds}"
            raise at_line(source, call.lineno, message, field=field)
        count = call.args[1] if len(call.args) > 1 else None
        n = count.value if isinstance(count, nodes.Const) else 0
        if not isinstance(n, int) or isinstance(n, bool) or not 0 <= n <= MAX_RECOMMENDATIONS:
            message = f"recommendations() takes at most {MAX_RECOMMENDATIONS} products"
            raise at_line(source, call.lineno, message, field=field)
        calls.add((kind.value, n))
    return calls


def compile_jinja(
    env: MailEnvironment, source: str, *, field: str
) -> tuple[Template, set[tuple[str, int]]]:
    """Parse and check one Jinja source; its template and its recommendation calls.

    Raises:
        InvalidInput: a syntax error, an unknown variable or a bad recommendations() call,
            with the line and column in ``source``.
    """
    try:
        tree = env.parse(source, filename=TEMPLATE_NAME)
        _unknown_names(env, tree, source, field)
        calls = _recommendation_calls(tree, source, field)
        code = env.compile(tree, filename=TEMPLATE_NAME)
    except TemplateSyntaxError as exc:
        raise syntax_error(source, exc, field=field) from None
    return env.template_class.from_code(env, code, env.make_globals(None), None), calls


def render_error(source: str, exc: BaseException, *, field: str) -> InvalidInput:
    """A render failure as an InvalidInput at its line of ``source``."""
    if isinstance(exc, RecursionError):
        message = "the template calls itself too deeply"
    else:
        message = str(getattr(exc, "message", None) or exc) or type(exc).__name__
    return at_line(source, runtime_line(exc.__traceback__) or 1, message, field=field)


def _stream(template: Template, values: Mapping[str, Any], source: str, field: str) -> str:
    parts: list[str] = []
    size = 0
    try:
        with budgeted():
            for chunk in template.generate(values):
                size += len(chunk)
                if size > MAX_OUTPUT:
                    message = f"the rendered email is over {MAX_OUTPUT // 1_000_000} MB"
                    raise InvalidInput(message, field=field)
                parts.append(chunk)
    except _RENDER_ERRORS as exc:
        raise render_error(source, exc, field=field) from None
    return "".join(parts)


def _guarded(
    recommend: Callable[[str, int], Sequence[Mapping[str, Any]]],
) -> Callable[..., Sequence[Mapping[str, Any]]]:
    def recommendations(kind: str = "best_sellers", n: int = 3) -> Sequence[Mapping[str, Any]]:
        if kind not in RECOMMENDATION_KINDS:
            raise ValueError(f"unknown kind of recommendations {kind!r}")
        count = n if isinstance(n, int) and not isinstance(n, bool) else 0
        return list(recommend(kind, max(0, min(count, MAX_RECOMMENDATIONS))))

    return recommendations


def _with_preheader(html: str, preheader: str) -> str:
    # A hidden block first in the body: the inbox shows it next to the subject.
    block = (
        '<div style="display:none;font-size:1px;line-height:1px;max-height:0;max-width:0;'
        f'opacity:0;overflow:hidden;mso-hide:all">{html_lib.escape(preheader)}</div>'
    )
    found = _BODY.search(html)
    return html[: found.end()] + block + html[found.end() :] if found else block + html


class Renderer:
    """One template, subject and preheader, compiled once and rendered per recipient.

    Raises:
        InvalidInput: the HTML (field "source"), subject ("subject") or preheader
            ("preheader") does not compile, with the line and column.
    """

    def __init__(self, html: str, subject: str, preheader: str | None = None) -> None:
        self._html_source = html
        self._subject_source = subject
        self._preheader_source = preheader or ""
        self._html, calls = compile_jinja(make_environment(autoescape=True), html, field="source")
        text_env = make_environment(autoescape=False)
        self._subject, more = compile_jinja(text_env, subject, field="subject")
        self._preheader, most = compile_jinja(text_env, self._preheader_source, field="preheader")
        self._calls = frozenset(calls | more | most)
        self._inliner = css_inline.CSSInliner(load_remote_stylesheets=False, keep_style_tags=True)

    @property
    def recommendation_calls(self) -> frozenset[tuple[str, int]]:
        """The ``(kind, n)`` of every ``recommendations(kind, n)`` call in the template.

        A sender prefetches these for a page of recipients. ``n`` is 0 when the template
        computes it (not a constant): "unknown, prefetch the most a call may ask for"
        (:data:`MAX_RECOMMENDATIONS`). The kind is always a constant (checked on save).
        """
        return self._calls

    def values(self, ctx: RenderContext) -> dict[str, Any]:
        """The variables a template sees for ``ctx``."""
        return {
            "contact": ctx.contact,
            "shop": ctx.shop,
            "unsubscribe_url": ctx.unsubscribe_url,
            "preferences_url": ctx.preferences_url,
            "view_in_browser_url": ctx.view_in_browser_url,
            "recommendations": _guarded(ctx.recommendations),
            "data": ctx.data,
        }

    def render(self, ctx: RenderContext) -> RenderedEmail:
        """One recipient's copy.

        Raises:
            InvalidInput: the template failed for this recipient (line and column).
        """
        values = self.values(ctx)
        subject = _stream(self._subject, values, self._subject_source, "subject")
        subject = " ".join(subject.split())[:MAX_SUBJECT]
        body = _stream(self._html, values, self._html_source, "source")
        preheader = " ".join(
            _stream(self._preheader, values, self._preheader_source, "preheader").split()
        )
        if preheader:
            body = _with_preheader(body, preheader)
        try:
            inlined = self._inliner.inline(body)
        except ValueError as exc:  # css-inline refuses markup it cannot read
            raise InvalidInput(f"the CSS cannot be inlined: {exc}", field="source") from None
        # The text comes from the markup before inlining: the same text, without the style
        # attributes the inliner added (less to tokenize).
        return RenderedEmail(subject=subject, html=inlined, text=html_to_text(body))
