"""Where in the user's source a template error is: line and column, 1-based.

Owns the translation of Jinja and mrml errors into ``InvalidInput("line L, column C:
message", field=...)``. Jinja reports a line and no column: the column is that of the
template tag on the line that names the failing expression (its variable or attribute
name), else of the first tag on the line, else 1. Best effort, but the line is the one at
fault whenever Jinja or mrml says which.
"""

from __future__ import annotations

import re
from types import TracebackType

from jinja2 import TemplateSyntaxError

from courriel.errors import InvalidInput

__all__ = [
    "TEMPLATE_NAME",
    "error_at",
    "line_col",
    "position_error",
    "runtime_line",
    "syntax_error",
]

TEMPLATE_NAME = "<courriel-template>"  # the filename Jinja puts in template frames
_TAG = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.DOTALL)
_QUOTED = re.compile(r"'([A-Za-z_][\w]*)'")


def line_col(source: str, offset: int) -> tuple[int, int]:
    """The 1-based line and column of a character offset in ``source``."""
    offset = max(0, min(offset, len(source)))
    line = source.count("\n", 0, offset) + 1
    return line, offset - (source.rfind("\n", 0, offset) + 1) + 1


def position_error(message: str, line: int, column: int, *, field: str) -> InvalidInput:
    """The InvalidInput every template error becomes."""
    return InvalidInput(f"line {line}, column {column}: {message}", field=field)


def error_at(source: str, offset: int, message: str, *, field: str) -> InvalidInput:
    """An InvalidInput at a character offset of ``source``."""
    line, column = line_col(source, offset)
    return position_error(message, line, column, field=field)


def _column(source: str, line: int, message: str) -> int:
    lines = source.split("\n")
    if not 1 <= line <= len(lines):
        return 1
    text = lines[line - 1]
    tags = list(_TAG.finditer(text))
    for name in _QUOTED.findall(message):
        for tag in tags:
            found = re.search(rf"\b{re.escape(name)}\b", tag.group())
            if found:
                return tag.start() + found.start() + 1
    if tags:
        return tags[0].start() + 1
    opener = min((i for i in (text.find("{{"), text.find("{%")) if i >= 0), default=-1)
    return opener + 1 if opener >= 0 else 1


def at_line(source: str, line: int, message: str, *, field: str) -> InvalidInput:
    """An InvalidInput at a line of ``source``, its column found from the message."""
    last = source.count("\n") + 1
    line = max(1, min(line, last))
    return position_error(message, line, _column(source, line, message), field=field)


def syntax_error(source: str, exc: TemplateSyntaxError, *, field: str) -> InvalidInput:
    """A Jinja syntax error as an InvalidInput at its place in ``source``."""
    return at_line(source, exc.lineno or 1, exc.message or "syntax error", field=field)


def runtime_line(tb: TracebackType | None) -> int | None:
    """The template line of the innermost template frame of a render error's traceback."""
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == TEMPLATE_NAME:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line
