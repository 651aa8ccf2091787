"""Typed reading of a shop's JSON payload, with the path of every bad field.

Owns the small accessors the Shopify and WooCommerce mappings use: each takes the object,
the key and the path of the object, and returns a typed value or raises
:class:`courriel.errors.InvalidInput` whose ``field`` is the JSON-pointer-like path
(``"line_items/2/price"``), which the webhook answers with a 422.

Invariants: pure functions, no I/O; missing optional keys and JSON ``null`` read as None;
ids may be integers (Shopify) or digit strings and always come back as strings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from courriel.errors import InvalidInput

__all__ = [
    "child",
    "opt_id",
    "opt_int",
    "opt_obj",
    "opt_str",
    "opt_time",
    "path",
    "req_id",
    "req_int",
    "req_obj",
    "req_str",
    "req_time",
    "seq",
]

Obj = Mapping[str, Any]


def path(base: str, key: str | int) -> str:
    """``base/key`` (just ``key`` at the root)."""
    return f"{base}/{key}" if base else str(key)


def req_obj(value: Any, where: str) -> Obj:
    """``value`` if it is a JSON object.

    Raises:
        InvalidInput: anything else.
    """
    if not isinstance(value, Mapping):
        raise InvalidInput("must be an object", field=where or "body")
    return value


def opt_obj(obj: Obj, key: str, where: str) -> Obj | None:
    """The object at ``key``, None when absent or null."""
    value = obj.get(key)
    return None if value is None else req_obj(value, path(where, key))


def child(obj: Obj, key: str, where: str) -> Obj:
    """The object at ``key``, an empty one when absent or null."""
    return opt_obj(obj, key, where) or {}


def seq(obj: Obj, key: str, where: str) -> Sequence[Any]:
    """The list at ``key``, empty when absent or null."""
    value = obj.get(key)
    if value is None:
        return ()
    if not isinstance(value, list):
        raise InvalidInput("must be a list", field=path(where, key))
    return value


def opt_str(obj: Obj, key: str, where: str, *, max_length: int = 4096) -> str | None:
    """The string at ``key``, stripped; None when absent, null or empty."""
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput("must be a string", field=path(where, key))
    value = value.strip()
    if len(value) > max_length:
        raise InvalidInput(f"longer than {max_length} characters", field=path(where, key))
    return value or None


def req_str(obj: Obj, key: str, where: str, *, max_length: int = 4096) -> str:
    """The non-empty string at ``key``."""
    value = opt_str(obj, key, where, max_length=max_length)
    if value is None:
        raise InvalidInput("is required", field=path(where, key))
    return value


def opt_int(obj: Obj, key: str, where: str) -> int | None:
    """The integer at ``key`` (a digit string is accepted); None when absent or null."""
    value = obj.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise InvalidInput("must be an integer", field=path(where, key))
    if isinstance(value, int):
        return value
    digits = value.strip().lstrip("-") if isinstance(value, str) else ""
    if digits.isascii() and digits.isdigit():
        return int(value.strip())
    raise InvalidInput("must be an integer", field=path(where, key))


def req_int(obj: Obj, key: str, where: str) -> int:
    """The integer at ``key``."""
    value = opt_int(obj, key, where)
    if value is None:
        raise InvalidInput("is required", field=path(where, key))
    return value


def opt_id(obj: Obj, key: str, where: str) -> str | None:
    """A shop id (integer or string of at most 64 characters) as a string; 0 is None."""
    value = obj.get(key)
    if value is None or value in (0, ""):
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InvalidInput("must be an id (integer or string)", field=path(where, key))
    text = str(value).strip()
    if not 0 < len(text) <= 64:
        raise InvalidInput("an id has 1 to 64 characters", field=path(where, key))
    return text


def req_id(obj: Obj, key: str, where: str) -> str:
    """A required shop id, as a string."""
    value = opt_id(obj, key, where)
    if value is None:
        raise InvalidInput("is required", field=path(where, key))
    return value


def opt_time(obj: Obj, key: str, where: str) -> datetime | None:
    """An ISO 8601 timestamp; one without an offset is UTC (WooCommerce's ``*_gmt``)."""
    value = opt_str(obj, key, where, max_length=64)
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise InvalidInput(f"not an ISO 8601 time: {value!r}", field=path(where, key)) from exc
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def req_time(obj: Obj, key: str, where: str) -> datetime:
    """A required ISO 8601 timestamp."""
    value = opt_time(obj, key, where)
    if value is None:
        raise InvalidInput("is required", field=path(where, key))
    return value
