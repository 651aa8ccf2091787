"""The sandboxed Jinja environment every email template runs in, and its limits.

Owns what a template can reach: Jinja's ``ImmutableSandboxedEnvironment`` (no attribute
starting with ``_``, no mutation of lists or dicts, ``str.format`` checked) hardened for
mail a shop owner writes and a whole audience renders:

- An unsafe attribute (``''.__class__``, ``cycler.__init__``) raises ``SecurityError`` at
  once instead of rendering as an empty value, so the template is refused at save time.
- Strings expose only a short list of harmless methods (no ``format``, ``center``,
  ``replace``, ``zfill``…: those are the filters below, which check sizes first).
- Every value built by ``~``, ``+``, ``*`` and the sizing filters is at most
  :data:`MAX_VALUE` characters; ``**`` is capped too.
- A render has a budget of :data:`MAX_STEPS` loop iterations and calls together (macro
  recursion and nested loops included), so no template can spin a CPU.
- ``lipsum``, ``cycler``, ``joiner`` and ``namespace`` are not available.

Invariant: the budget lives in a context variable set by :func:`budgeted`, so one
environment serves every thread and every render at once.
"""

from __future__ import annotations

import contextvars
import operator
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any

from jinja2 import ChainableUndefined, nodes, pass_context
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError
from jinja2.filters import do_default
from jinja2.runtime import Context, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

__all__ = [
    "MAX_STEPS",
    "MAX_VALUE",
    "budgeted",
    "make_environment",
    "money",
]

MAX_VALUE = 1_000_000  # characters in any one value a template builds
MAX_STEPS = 1_000_000  # loop iterations + calls in one render
MAX_POWER = 1_000_000  # largest result of ``**`` on integers
_WIDTH = re.compile(r"%[-#0 +]*(\*|\d{4,})|%[-#0 +]*\d*\.(\*|\d{4,})")
_STR_METHODS = frozenset(
    {"capitalize", "casefold", "count", "endswith", "find", "isalnum", "isalpha", "isdigit",
     "islower", "isspace", "isupper", "lower", "lstrip", "partition", "removeprefix",
     "removesuffix", "rfind", "rpartition", "rsplit", "rstrip", "split", "splitlines",
     "startswith", "strip", "swapcase", "title", "upper"}
)  # fmt: skip
_LOOP_FILTER = "_budget_loop"

_steps: contextvars.ContextVar[list[int]] = contextvars.ContextVar("template_steps")


@contextmanager
def budgeted() -> Iterator[None]:
    """Run one render with a fresh step budget (see :data:`MAX_STEPS`)."""
    token = _steps.set([MAX_STEPS])
    try:
        yield
    finally:
        _steps.reset(token)


def _tick() -> None:
    left = _steps.get(None)
    if left is None:
        return
    left[0] -= 1
    if left[0] < 0:
        raise SecurityError("the template does too much work (loops or calls)")


def _too_large() -> None:
    raise SecurityError(f"a value in the template grows over {MAX_VALUE} characters")


def _sized(value: Any) -> Any:
    if isinstance(value, (str, list, tuple)) and len(value) > MAX_VALUE:
        _too_large()
    return value


def _loop(iterable: Iterable[Any]) -> Iterator[Any]:
    for item in iterable:
        _tick()
        yield item


class _Generator(CodeGenerator):
    """Compiles ``a ~ b`` through the size check (a Concat node is not a binop)."""

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.sized(")
        super().visit_Concat(node, frame)
        self.write(")")


class _MailUndefined(ChainableUndefined):
    """Missing data renders as nothing (``contact.attributes.vip.level`` included)."""

    __slots__ = ()


class MailEnvironment(ImmutableSandboxedEnvironment):
    """The template sandbox (see the module docstring)."""

    code_generator_class = _Generator
    intercepted_binops = frozenset({"*", "+", "**"})

    def sized(self, value: Any) -> Any:
        """Refuse a value over :data:`MAX_VALUE` characters or items."""
        return _sized(value)

    def call_binop(self, context: Context, operator_: str, left: Any, right: Any) -> Any:
        if operator_ == "*":
            seq, times = (right, left) if isinstance(left, int) else (left, right)
            if isinstance(seq, (str, list, tuple)) and isinstance(times, int):
                _sized(seq) if len(seq) * times <= MAX_VALUE else _too_large()
        if (
            operator_ == "**"
            and isinstance(left, int)
            and isinstance(right, int)
            and (right > 64 or abs(left) ** max(min(right, 64), 0) > MAX_POWER)
        ):
            raise SecurityError("the template computes too large a power")
        return _sized(super().call_binop(context, operator_, left, right))

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _tick()
        return super().call(__context, __obj, *args, **kwargs)

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if isinstance(obj, str) and callable(value):
            return attr in _STR_METHODS
        return super().is_safe_attribute(obj, attr, value)

    def unsafe_undefined(self, obj: Any, attribute: str) -> Undefined:
        raise SecurityError(f"the attribute {attribute!r} is not available in templates")

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = super()._parse(source, name, filename)
        # Every for loop iterates through the step budget.
        for loop in tree.find_all(nodes.For):
            loop.iter = nodes.Filter(loop.iter, _LOOP_FILTER, [], [], None, None)
        return tree


def _default(value: Any, default_value: Any = "", boolean: bool = False) -> Any:
    # None and "" count as missing: a contact without a first name gets the default.
    if value is None or (isinstance(value, str) and not value.strip()):
        return default_value
    return do_default(value, default_value, boolean)


_SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£", "JPY": "¥", "CAD": "CA$", "AUD": "A$"}
_ZERO_DECIMAL = frozenset({"JPY", "KRW", "CLP", "VND", "ISK", "HUF", "TWD", "UGX"})
_COMMA_LOCALES = frozenset({"fr", "de", "es", "it", "nl", "pt", "be", "at", "fi", "sv", "da"})


@pass_context
def _money_filter(
    context: Context, minor: Any, currency: str | None = None, locale: str = "en"
) -> str:
    shop = context.get("shop")
    fallback = shop.get("currency") if isinstance(shop, Mapping) else None
    return money(minor, currency or fallback or "EUR", locale=locale)


def money(minor: Any, currency: str, *, locale: str = "en") -> str:
    """An amount in minor units as text: ``money(1250, "EUR")`` → ``€12.50``.

    ``locale`` "fr", "de" and other comma locales give ``12,50 €``. Zero-decimal currencies
    (JPY…) have no fraction. A value that is not a number renders as nothing.
    """
    if isinstance(minor, bool) or not isinstance(minor, (int, float, str)):
        return ""
    try:
        amount = int(minor)
    except ValueError:
        return ""
    code = str(currency).upper()[:3]
    digits = 0 if code in _ZERO_DECIMAL else 2
    sign = "-" if amount < 0 else ""
    whole, frac = divmod(abs(amount), 10**digits)
    symbol = _SYMBOLS.get(code, code + " ")
    if locale[:2].lower() in _COMMA_LOCALES:
        text = f"{whole:,}".replace(",", "\u202f") + (f",{frac:0{digits}d}" if digits else "")
        return f"{sign}{text} {symbol.strip()}"
    text = f"{whole:,}" + (f".{frac:0{digits}d}" if digits else "")
    return f"{sign}{symbol}{text}"


_DATE_FORMATS = {"short": "%Y-%m-%d", "medium": "%-d %b %Y", "long": "%-d %B %Y", "iso": "iso"}


def _date(value: Any, format: str = "medium") -> str:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return str(value)
    if not isinstance(value, (date, datetime)):
        return ""
    pattern = _DATE_FORMATS.get(format, format)
    if pattern == "iso":
        return value.isoformat()
    if _WIDTH.search(pattern.replace("%-", "%")) or re.search(r"%[-#0 +_^]*\d", pattern):
        raise SecurityError("a date format may not set a width")
    return value.strftime(pattern[:200])


def _format(value: Any, *args: Any, **kwargs: Any) -> str:
    if _WIDTH.search(str(value)):
        raise SecurityError("a format may not set a width over 999")
    # A Markup format string escapes its arguments (autoescaped HTML); str does not.
    pattern = value if isinstance(value, str) else str(value)
    return str(_sized(pattern % (kwargs or args)))


def _center(value: Any, width: int = 80) -> str:
    return str(value).center(min(int(width), 1000))


def _indent(value: Any, width: Any = 4, first: bool = False, blank: bool = False) -> Any:
    from jinja2.filters import do_indent

    size = len(width) if isinstance(width, str) else int(width)
    if size > 100:
        raise SecurityError("an indent may be at most 100 characters")
    return _sized(do_indent(str(value), width, first, blank))


def _replace(value: Any, old: str, new: str, count: int | None = None) -> str:
    text, old, new = str(value), str(old), str(new)
    times = text.count(old) if old else len(text) + 1
    if count is not None:
        times = min(times, int(count))
    if len(text) + times * len(new) > MAX_VALUE:
        _too_large()
    return text.replace(old, new, -1 if count is None else int(count))


def _batch(value: Any, linecount: int, fill_with: Any = None) -> Any:
    from jinja2.filters import do_batch

    if int(linecount) > 1000:
        raise SecurityError("a batch may hold at most 1000 items")
    return do_batch(value, linecount, fill_with)


def make_environment(*, autoescape: bool) -> MailEnvironment:
    """A fresh sandbox; ``autoescape`` on for HTML, off for subjects and text."""
    env = MailEnvironment(
        autoescape=autoescape,
        undefined=_MailUndefined,
        finalize=lambda value: "" if value is None else value,
        keep_trailing_newline=True,
    )
    for name in ("lipsum", "cycler", "joiner", "namespace"):
        env.globals.pop(name, None)
    env.filters.update(
        {
            "default": _default,
            "d": _default,
            "money": _money_filter,
            "date": _date,
            "format": _format,
            "center": _center,
            "indent": _indent,
            "replace": _replace,
            "batch": _batch,
            _LOOP_FILTER: _loop,
        }
    )
    env.binop_table = {**env.binop_table, "*": operator.mul, "+": operator.add}
    return env
