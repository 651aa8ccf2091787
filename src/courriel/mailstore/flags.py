"""Message flags: the one stored encoding of ``messages.flags`` and flag arithmetic.

Encoding (the invariant every writer keeps): the flags of a message are stored as one
string, the flags separated by single spaces, each flag once (compared
case-insensitively, RFC 9051 §2.3.2), sorted by their case-folded spelling, with no
leading or trailing space; ``""`` means no flags. System flags are stored with their
canonical spelling (``\\Seen``, never ``\\SEEN``); keywords keep the first spelling the
message had. ``\\Recent`` is never stored: it is a per-session state (RFC 3501 §2.3.2)
kept in ``folders.recent_uid``.

Because flags are space-separated atoms, SQL finds a flag with
``' ' || flags || ' ' LIKE '% \\Seen %'`` (:func:`has_flag`), never by a bare substring
(``\\Seen`` is a substring of a keyword-like ``\\Seenx`` extension flag).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Literal

from sqlalchemy import ColumnElement, literal

from courriel.errors import InvalidInput

__all__ = [
    "SYSTEM_FLAGS",
    "apply_flags",
    "canonical",
    "check_flags",
    "decode_flags",
    "encode_flags",
    "has_flag",
]

# RFC 9051 §2.3.2: the system flags (\Recent is RFC 3501's, never stored).
SYSTEM_FLAGS = ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft")
_CANONICAL = {flag.casefold(): flag for flag in SYSTEM_FLAGS}
_RECENT = "\\recent"
# RFC 9051 §9: atom-specials, which no flag may contain (a flag is "\" atom, or an atom).
_SPECIALS = frozenset('(){ %*"\\]')


def check_flags(flags: Iterable[str]) -> list[str]:
    """The flags as a list, after checking each is a flag (RFC 9051 §9 ``flag``).

    Raises:
        InvalidInput: an empty flag, or one with a space, control character, non-ASCII
            character or other atom-special (a backslash only as the first character).
    """
    checked = list(flags)
    for flag in checked:
        atom = flag[1:] if flag.startswith("\\") else flag
        if not atom or any(ch in _SPECIALS or not " " < ch < "\x7f" for ch in atom):
            raise InvalidInput(f"not a valid flag: {flag!r}")
    return checked


def canonical(flag: str) -> str:
    """The stored spelling of a flag: system flags canonical, keywords as given."""
    return _CANONICAL.get(flag.casefold(), flag)


@functools.lru_cache(maxsize=1024)
def decode_flags(stored: str) -> frozenset[str]:
    """The flags of a stored ``messages.flags`` value (cached: most messages share a few)."""
    return frozenset(stored.split()) if stored else frozenset()


def encode_flags(flags: Iterable[str]) -> str:
    """The stored form of a set of flags (see the module docstring).

    The first spelling of a flag that appears twice (in any case) is kept; ``\\Recent``
    is dropped.
    """
    seen: dict[str, str] = {}
    for flag in flags:
        key = flag.casefold()
        if key != _RECENT and flag and key not in seen:
            seen[key] = canonical(flag)
    return " ".join(seen[key] for key in sorted(seen))


def apply_flags(current: str, mode: Literal["+", "-", ""], flags: Iterable[str]) -> str:
    """The stored flags after ``STORE`` (RFC 9051 §6.4.6) with ``mode`` on ``current``.

    ``+`` adds (keeping the spelling already stored), ``-`` removes (case-insensitively),
    ``""`` replaces.
    """
    given = list(flags)
    if mode == "":
        return encode_flags(given)
    have = decode_flags(current)
    if mode == "+":
        return encode_flags([*sorted(have), *given])
    removed = {flag.casefold() for flag in given}
    return encode_flags(flag for flag in have if flag.casefold() not in removed)


def has_flag(column: ColumnElement[str], flag: str) -> ColumnElement[bool]:
    """SQL: the stored flags ``column`` contain ``flag`` (a canonical system flag)."""
    pattern = "% " + flag.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + " %"
    return (literal(" ") + column + literal(" ")).like(pattern, escape="\\")
