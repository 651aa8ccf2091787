"""Saving a template: MJML or HTML source (with Jinja) to the HTML stored and rendered.

Owns :func:`compile_template`. The order matters:

1. The Jinja of the *source* is parsed and checked (syntax, unknown variables,
   ``recommendations()`` kinds): its line numbers are the user's.
2. MJML is compiled with ``mrml``. Template tags are first swapped for inert placeholders
   (``{{ a < b }}`` or quotes inside an attribute would otherwise break the MJML parse)
   and put back verbatim afterwards; a tag that mrml drops (outside ``mj-text``,
   ``mj-raw``, ``mj-button``… or an attribute) is refused at its source position.
   Remote fonts are stripped from mrml's output (Google Fonts links and ``@import``):
   the server works offline and mail clients fall back to the font stack.
3. The HTML is trial-rendered with a sample contact, shop and products
   (:mod:`.sample`): a call of something undefined, a sandbox violation, a runaway loop
   is refused with its line and column in the source.

Every error is ``InvalidInput("line L, column C: message", field="source")``.
"""

from __future__ import annotations

import re
from typing import Literal

import mrml
from jinja2 import Template

from courriel.errors import InvalidInput
from courriel.marketing.templates.env import make_environment
from courriel.marketing.templates.locate import at_line, error_at
from courriel.marketing.templates.render import (
    Renderer,
    compile_jinja,
    render_error,
)
from courriel.marketing.templates.sample import sample_context

__all__ = ["KINDS", "MAX_SOURCE", "compile_template"]

KINDS = ("mjml", "html")
MAX_SOURCE = 1_000_000  # characters of template source
_TAG = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)
_PLACEHOLDER = re.compile(r"cjt([0-9]{6})x")
_END_OF_STREAM = "unexpected end of stream"
_POSITION = re.compile(r"at position (\d+):(\d+)")
_MARKUP = re.compile(r"<!--.*?-->|<(/?)([A-Za-z][\w:.-]*)\b[^>]*?(/?)>", re.DOTALL)
_VOID = frozenset({"br", "img", "hr", "meta", "link", "input", "area", "base", "col", "wbr"})
_REMOTE_FONTS = re.compile(
    r"<link\b[^>]*href=\"https?://fonts\.[^\"]*\"[^>]*>|@import url\(https?://fonts\.[^)]*\);?",
    re.IGNORECASE,
)


def compile_template(kind: Literal["mjml", "html"], source: str) -> str:
    """The HTML (Jinja still in it) a template source compiles to.

    Raises:
        InvalidInput: unknown kind (field "kind"); a source that does not compile or
            fails its trial render (field "source", message "line L, column C: …").
    """
    if kind not in KINDS:
        raise InvalidInput("a template is mjml or html", field="kind")
    if not source.strip():
        raise InvalidInput("a template needs a source", field="source")
    if len(source) > MAX_SOURCE:
        raise InvalidInput(f"a template is at most {MAX_SOURCE} characters", field="source")
    if kind == "mjml":
        # Browsers send a textarea's line breaks as CRLF (HTML's form encoding) and mrml
        # refuses a CR between the tags of <mj-head>; lines and columns stay the same.
        source = source.replace("\r\n", "\n")
    checked, _ = compile_jinja(make_environment(autoescape=True), source, field="source")
    html = _mjml_to_html(source) if kind == "mjml" else source
    renderer = Renderer(html, "")
    try:
        renderer.render(sample_context())
    except InvalidInput as exc:
        raise exc if kind == "html" else _source_error(source, checked, renderer, exc) from None
    return html


def _source_error(
    source: str, checked: Template, renderer: Renderer, exc: InvalidInput
) -> InvalidInput:
    # The error's line is one of the compiled HTML: render the MJML source itself (same
    # tags, same order) to find the line in what the user wrote.
    try:
        checked.render(renderer.values(sample_context()))
    except Exception as again:
        return render_error(source, again, field="source")
    message = str(exc).partition(": ")[2] or str(exc)
    return at_line(source, _line_naming(source, message), message, field="source")


def _line_naming(source: str, message: str) -> int:
    names = re.findall(r"'([A-Za-z_]\w*)'", message)
    for tag in _TAG.finditer(source):
        if not names or any(re.search(rf"\b{n}\b", tag.group()) for n in names):
            return source.count("\n", 0, tag.start()) + 1
    return 1


def _mjml_to_html(source: str) -> str:
    tags = list(_TAG.finditer(source))
    pieces: list[str] = []
    shifts: list[tuple[int, int]] = []  # (offset in the protected text, source - protected)
    last = size = 0
    for index, match in enumerate(tags):
        pieces.append(source[last : match.start()])
        pieces.append(f"cjt{index:06d}x")
        size += match.start() - last + 10
        last = match.end()
        shifts.append((size, last - size))
    pieces.append(source[last:])
    protected = "".join(pieces)
    try:
        output = mrml.to_html(protected, render_options=mrml.RenderOptions(fonts={}))
    except OSError as exc:
        offset, message = _mjml_error(protected, str(exc))
        # Back from the protected text to the source (a tag may span lines).
        delta = next((d for end, d in reversed(shifts) if end <= offset), 0)
        raise error_at(source, offset + delta, message, field="source") from None
    html = _REMOTE_FONTS.sub("", output.content)
    seen: set[int] = set()

    def restore(match: re.Match[str]) -> str:
        index = int(match.group(1))
        if index >= len(tags):
            return match.group()
        seen.add(index)
        return tags[index].group()

    html = _PLACEHOLDER.sub(restore, html)
    for index, tag in enumerate(tags):
        if index not in seen and not tag.group().startswith("{#"):
            message = (
                "this template tag is lost when the MJML compiles:"
                " put it in mj-text, mj-raw or an attribute"
            )
            raise error_at(source, tag.start(), message, field="source")
    return html


def _mjml_error(source: str, message: str) -> tuple[int, str]:
    """Where an mrml error is: mrml names it sometimes; else it is found by prefixes."""
    found = _POSITION.search(message)
    if found:
        return int(found.group(1)), f"MJML: {message}"
    if message.startswith(_END_OF_STREAM):
        return _unclosed(source)
    return _first_bad_offset(source), f"MJML does not parse here ({message})"


def _fails(prefix: str) -> bool:
    """True when mrml fails on ``prefix`` for a reason other than its being incomplete."""
    try:
        mrml.to_html(prefix)
    except OSError as exc:
        return not str(exc).startswith(_END_OF_STREAM)
    return False


def _first_bad_offset(source: str) -> int:
    # A prefix that stops at a line end is merely incomplete until the faulty line; the
    # column is where the longest still-incomplete prefix of that line ends.
    start = source.find("<mjml")
    line_start = max(start, 0)
    for line_end in [m.start() for m in re.finditer("\n", source)] + [len(source)]:
        if line_end > line_start and _fails(source[:line_end]):
            for end in range(line_end - 1, line_start - 1, -1):
                if not _fails(source[:end]):
                    return end
            return line_start
        line_start = max(line_start, line_end + 1)
    return len(source)


def _unclosed(source: str) -> tuple[int, str]:
    """The first tag left open (or closed without being opened) in ``source``."""
    stack: list[tuple[str, int]] = []
    for match in _MARKUP.finditer(source):
        closing, name, selfclosing = match.group(1), match.group(2), match.group(3)
        if name is None or selfclosing or name.lower() in _VOID:
            continue
        if not closing:
            stack.append((name, match.start()))
            continue
        if not any(open_name == name for open_name, _ in stack):
            return match.start(), f"</{name}> closes a tag that is not open"
        open_name, at = stack.pop()
        if open_name != name:
            return at, f"<{open_name}> is not closed"
    if stack:
        name, at = stack[-1]
        return at, f"<{name}> is not closed"
    return len(source), "the MJML ends too early"
