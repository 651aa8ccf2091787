"""Durations as operators write them: ``45s``, ``5m``, ``1h30m``, ``2d``, ``1w``.

This module owns the one text form of a duration used in ``courriel.toml``, in
``COURRIEL_*`` variables and in ``--set`` flags. In memory a duration is a
:class:`datetime.timedelta` with whole seconds.

Invariants:
    * ``parse_duration(format_duration(d)) == d`` for every non-negative
      ``timedelta`` with whole seconds (the property test checks it).
    * :func:`format_duration` writes the shortest canonical form: units from the
      largest down (``w d h m s``), each at most once, zero units left out,
      and ``0s`` for zero.
    * Parsing never accepts an empty text, a negative value, a fraction or an
      unknown unit; it raises :class:`DurationError` whose text says why.
"""

from __future__ import annotations

import re
from datetime import timedelta

from courriel.errors import InvalidInput

__all__ = ["DurationError", "format_duration", "parse_duration"]

# Seconds per unit, largest first: format_duration relies on this order.
_UNITS: dict[str, int] = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
_PART = re.compile(r"(\d+)([a-z]+)")
_WHOLE = re.compile(r"(?:\d+[a-z]+)+")
# Past this a timedelta overflows (its limit is 999999999 days).
_MAX_SECONDS = 999_999_999 * 86400


class DurationError(InvalidInput):
    """A duration text does not parse; the message says what was expected."""


def parse_duration(text: str) -> timedelta:
    """Parse a duration such as ``5m``, ``1h30m``, ``2d`` or ``45s``.

    Units are ``w`` (weeks), ``d``, ``h``, ``m`` and ``s``; a unit may appear at
    most once, and in that order. Spaces around the text are ignored.

    Args:
        text: the duration as written by an operator.

    Returns:
        The duration as a ``timedelta`` of whole seconds.

    Raises:
        DurationError: the text is empty, negative, has no unit, an unknown or
            repeated unit, or is too large.
    """
    value = text.strip().lower()
    if not value:
        raise DurationError("empty duration; expected e.g. 45s, 5m, 1h30m, 2d")
    if value.startswith("-"):
        raise DurationError(f"negative duration {text!r}; durations are >= 0")
    if value.isascii() and value.isdigit():
        raise DurationError(f"duration {text!r} has no unit; write e.g. {value}s or {value}m")
    if not _WHOLE.fullmatch(value):
        raise DurationError(f"bad duration {text!r}; expected e.g. 45s, 5m, 1h30m, 2d")
    total = 0
    last_rank = -1
    order = list(_UNITS)
    for number, unit in _PART.findall(value):
        if unit not in _UNITS:
            raise DurationError(f"bad duration {text!r}: unknown unit {unit!r} (use w, d, h, m, s)")
        rank = order.index(unit)
        if rank <= last_rank:
            raise DurationError(f"bad duration {text!r}: units must go from w down to s, once each")
        last_rank = rank
        total += int(number) * _UNITS[unit]
    if total > _MAX_SECONDS:
        raise DurationError(f"duration {text!r} is too large")
    return timedelta(seconds=total)


def format_duration(duration: timedelta) -> str:
    """Write a duration in its canonical text form (``1h30m``, ``0s``).

    Args:
        duration: a non-negative ``timedelta`` of whole seconds.

    Returns:
        The shortest text that :func:`parse_duration` reads back as ``duration``.

    Raises:
        DurationError: the duration is negative or has a fraction of a second.
    """
    if duration < timedelta(0):
        raise DurationError(f"negative duration {duration}; durations are >= 0")
    if duration.microseconds:
        raise DurationError(f"duration {duration} is not a whole number of seconds")
    remaining = duration.days * 86400 + duration.seconds
    if remaining == 0:
        return "0s"
    parts: list[str] = []
    for unit, seconds in _UNITS.items():
        count, remaining = divmod(remaining, seconds)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
