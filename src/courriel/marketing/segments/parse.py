"""JSON ⇄ condition tree: the only way a segment definition from outside becomes a tree.

Owns: validation of segment definitions (docs/segments.md is the documented format) and
the reverse mapping, :func:`to_json`, such that ``parse_segment(to_json(n)) == n``.

Invariants:
- Every rejection is an :class:`~courriel.errors.InvalidInput` whose ``field`` is the path
  of the offending value, segments joined by ``/`` (``"conditions/2/within_days"``); the
  root object's own problems use ``field=""``. No other exception leaves this module.
- Unknown keys are refused (a typo must not silently widen a segment).
- Group depth ≤ :data:`MAX_DEPTH` and at most :data:`MAX_CONDITIONS` leaf conditions, so
  that the compiled SQL stays bounded.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any as AnyValue

from courriel.errors import InvalidInput
from courriel.marketing.segments import tree as t

__all__ = ["MAX_CONDITIONS", "MAX_DAYS", "MAX_DEPTH", "parse_segment", "to_json"]

MAX_DEPTH = 10
MAX_CONDITIONS = 200
MAX_DAYS = 36_500
MAX_COUNT = 1_000_000
MAX_TEXT = 255
MAX_VALUES = 500
MAX_FILTERS = 10
MAX_PATH = 4
# Attribute keys and event property names: safe inside a JSON path on both engines.
KEY_RE = re.compile(r"^[A-Za-z0-9_$:\- ]{1,64}$")


@dataclass(slots=True)
class _State:
    conditions: int = 0
    seen: list[str] = field(default_factory=list)


def _fail(path: str, message: str) -> InvalidInput:
    return InvalidInput(message, field=path)


def _join(path: str, key: str | int) -> str:
    return f"{path}/{key}" if path else str(key)


def parse_segment(obj: AnyValue) -> t.Node:
    """Validate a JSON segment definition and build its condition tree.

    Args:
        obj: the decoded JSON value (a dict at the root).

    Returns:
        The tree.

    Raises:
        InvalidInput: the definition is not valid; ``field`` names the offending value.
    """
    return _node(obj, "", 1, _State())


def _object(obj: AnyValue, path: str, allowed: tuple[str, ...]) -> Mapping[str, AnyValue]:
    if not isinstance(obj, dict):
        raise _fail(path, "a condition must be a JSON object")
    for key in obj:
        if key not in allowed:
            raise _fail(_join(path, str(key)), f"unexpected field {key!r}")
    return obj


def _node(obj: AnyValue, path: str, depth: int, state: _State) -> t.Node:
    if not isinstance(obj, dict):
        raise _fail(path, "a condition must be a JSON object")
    kind = obj.get("kind")
    if not isinstance(kind, str):
        raise _fail(_join(path, "kind"), "missing or non-text 'kind'")
    if kind in ("all", "any"):
        return _group(kind, obj, path, depth, state)
    if kind == "not":
        _object(obj, path, ("kind", "condition"))
        if depth >= MAX_DEPTH:
            raise _fail(path, f"conditions nest deeper than {MAX_DEPTH} levels")
        return t.Not(
            condition=_node(
                _need(obj, path, "condition"), _join(path, "condition"), depth + 1, state
            )
        )
    leaf = _LEAVES.get(kind)
    if leaf is None:
        raise _fail(_join(path, "kind"), f"unknown condition kind {kind!r}")
    state.conditions += 1
    if state.conditions > MAX_CONDITIONS:
        raise _fail(path, f"a segment holds at most {MAX_CONDITIONS} conditions")
    return leaf(obj, path)


def _group(kind: str, obj: Mapping[str, AnyValue], path: str, depth: int, state: _State) -> t.Node:
    _object(obj, path, ("kind", "conditions"))
    items = _need(obj, path, "conditions")
    where = _join(path, "conditions")
    if not isinstance(items, list):
        raise _fail(where, "'conditions' must be a list")
    if items and depth >= MAX_DEPTH:
        raise _fail(where, f"conditions nest deeper than {MAX_DEPTH} levels")
    nodes = tuple(_node(item, _join(where, i), depth + 1, state) for i, item in enumerate(items))
    return t.All(conditions=nodes) if kind == "all" else t.Any(conditions=nodes)


# -- typed field readers ------------------------------------------------------------------


def _need(obj: Mapping[str, AnyValue], path: str, key: str) -> AnyValue:
    if key not in obj:
        raise _fail(_join(path, key), f"missing field {key!r}")
    return obj[key]


def _text(value: AnyValue, path: str, *, empty: bool = False) -> str:
    if not isinstance(value, str):
        raise _fail(path, "must be text")
    if not empty and not value:
        raise _fail(path, "must not be empty")
    if len(value) > MAX_TEXT:
        raise _fail(path, f"longer than {MAX_TEXT} characters")
    if any(ord(c) < 32 for c in value):
        raise _fail(path, "must not hold control characters")
    return value


def _int(value: AnyValue, path: str, low: int, high: int) -> int:
    whole = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if isinstance(value, bool) or not whole:
        raise _fail(path, "must be a whole number")
    number = int(value)
    if not low <= number <= high:
        raise _fail(path, f"must be between {low} and {high}")
    return number


def _number(value: AnyValue, path: str) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(path, "must be a number")
    if not math.isfinite(value) or abs(value) > 1e15:
        raise _fail(path, "must be a finite number below 10^15")
    return value


def _money(value: AnyValue, path: str) -> int | float:
    number = _number(value, path)
    if number < 0:
        raise _fail(path, "must not be negative")
    return number


def _days(obj: Mapping[str, AnyValue], path: str, key: str = "within_days") -> int | None:
    if obj.get(key) is None:
        return None
    return _int(obj[key], _join(path, key), 1, MAX_DAYS)


def _bool(value: AnyValue, path: str) -> bool:
    if not isinstance(value, bool):
        raise _fail(path, "must be true or false")
    return value


def _choice(value: AnyValue, path: str, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise _fail(path, f"must be one of {', '.join(choices)}")
    return value


def _time(value: AnyValue, path: str) -> datetime:
    if not isinstance(value, str):
        raise _fail(path, "must be an ISO 8601 date or time")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise _fail(path, "must be an ISO 8601 date or time") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _statuses(value: AnyValue, path: str, choices: tuple[str, ...]) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise _fail(path, "must be a status or a non-empty list of statuses")
    chosen = {_choice(item, _join(path, i), choices) for i, item in enumerate(items)}
    return tuple(s for s in choices if s in chosen)


def _key(value: AnyValue, path: str) -> str:
    if not isinstance(value, str) or not KEY_RE.match(value):
        raise _fail(path, "must be 1-64 letters, digits, spaces or _ $ : -")
    return value


# -- leaves -------------------------------------------------------------------------------


def _text_value(op: str, obj: Mapping[str, AnyValue], path: str) -> str | None:
    """The value of a text operator (None for is_set / is_not_set, which take none)."""
    where = _join(path, "value")
    if op in ("is_set", "is_not_set"):
        if obj.get("value") is not None:
            raise _fail(where, f"{op} takes no value")
        return None
    return _text(_need(obj, path, "value"), where, empty=op in ("eq", "neq"))


def _date_value(op: str, obj: Mapping[str, AnyValue], path: str) -> int | datetime | None:
    where = _join(path, "value")
    if op in ("is_set", "is_not_set"):
        if obj.get("value") is not None:
            raise _fail(where, f"{op} takes no value")
        return None
    raw = _need(obj, path, "value")
    if op in ("before", "after"):
        return _time(raw, where)
    return _int(raw, where, 1, MAX_DAYS)


def _profile(obj: Mapping[str, AnyValue], path: str) -> t.Node:
    _object(obj, path, ("kind", "field", "op", "value"))
    fields = (*t.PROFILE_TEXT_FIELDS, *t.PROFILE_DATE_FIELDS)
    name = _choice(_need(obj, path, "field"), _join(path, "field"), fields)
    if name in t.PROFILE_DATE_FIELDS:
        op = _choice(_need(obj, path, "op"), _join(path, "op"), t.PROFILE_DATE_OPS)
        return t.Profile(field="created_at", op=op, value=_date_value(op, obj, path))
    op = _choice(_need(obj, path, "op"), _join(path, "op"), t.TEXT_OPS)
    return t.Profile(field=name, op=op, value=_text_value(op, obj, path))  # type: ignore[arg-type]


def _json_value(op: str, obj: Mapping[str, AnyValue], path: str) -> t.Scalar:
    """The value of an attribute or property condition, checked against the operator."""
    where = _join(path, "value")
    if op in ("is_set", "is_not_set"):
        if obj.get("value") is not None:
            raise _fail(where, f"{op} takes no value")
        return None
    value = _need(obj, path, "value")
    if isinstance(value, bool):
        if op not in ("eq", "neq"):
            raise _fail(_join(path, "op"), "a true/false value takes eq or neq")
        return value
    if isinstance(value, int | float):
        if op not in t.NUMBER_OPS:
            raise _fail(_join(path, "op"), f"a number takes one of {', '.join(t.NUMBER_OPS)}")
        return _number(value, where)
    if isinstance(value, str):
        if op not in t.TEXT_OPS:
            raise _fail(_join(path, "op"), f"a text value takes one of {', '.join(t.TEXT_OPS)}")
        return _text(value, where, empty=op in ("eq", "neq"))
    raise _fail(where, "must be text, a number or true/false")


def _attribute(obj: Mapping[str, AnyValue], path: str) -> t.Node:
    _object(obj, path, ("kind", "key", "op", "value"))
    key = _key(_need(obj, path, "key"), _join(path, "key"))
    op = _choice(_need(obj, path, "op"), _join(path, "op"), t.ATTRIBUTE_OPS)
    return t.Attribute(key=key, op=op, value=_json_value(op, obj, path))


def _location(obj: Mapping[str, AnyValue], path: str) -> t.Node:
    _object(obj, path, ("kind", "field", "op", "value"))
    name = _choice(_need(obj, path, "field"), _join(path, "field"), t.LOCATION_FIELDS)
    op = _choice(_need(obj, path, "op"), _join(path, "op"), t.LOCATION_OPS)
    value: str | tuple[str, ...] | None
    if op in ("in", "not_in"):
        where = _join(path, "value")
        raw = _need(obj, path, "value")
        if not isinstance(raw, list) or not raw or len(raw) > MAX_VALUES:
            raise _fail(where, f"must be a list of 1 to {MAX_VALUES} values")
        value = tuple(_text(v, _join(where, i), empty=True) for i, v in enumerate(raw))
    else:
        value = _text_value(op, obj, path)
    return t.Location(field=name, op=op, value=value)  # type: ignore[arg-type]


def _consent(obj: Mapping[str, AnyValue], path: str) -> t.Node:
    _object(obj, path, ("kind", "channel", "status"))
    channel = _choice(_need(obj, path, "channel"), _join(path, "channel"), ("email", "sms"))
    statuses = _statuses(_need(obj, path, "status"), _join(path, "status"), t.CONSENT_STATUSES)
    return t.Consent(channel=channel, statuses=statuses)  # type: ignore[arg-type]


def _list(obj: Mapping[str, AnyValue], path: str) -> t.Node:
    _object(obj, path, ("kind", "list", "status"))
    raw = _need(obj, path, "list")
    where = _join(path, "list")
    ref: int | str = _text(raw, where) if isinstance(raw, str) else _int(raw, where, 1, 2**62)
    statuses: tuple[str, ...] = ("subscribed",)
    if obj.get("status") is not None:
        statuses = _statuses(obj["status"], _join(path, "status"), t.LIST_STATUSES)
    return t.ListMember(list=ref, statuses=statuses)


def _tag(obj: Mapping[str, AnyValue], path: str) -> t.Node:
    _object(obj, path, ("kind", "tag", "present"))
    tag = _text(_need(obj, path, "tag"), _join(path, "tag"))
    if len(tag) > 64:
        raise _fail(_join(path, "tag"), "longer than 64 characters")
    present = True if obj.get("present") is None else _bool(obj["present"], _join(path, "present"))
    return t.Tag(tag=tag, present=present)


def _order(obj: Mapping[str, AnyValue], path: str) -> t.Node:
    _object(obj, path, ("kind", "metric", "op", "value", "within_days"))
    metric = _choice(_need(obj, path, "metric"), _join(path, "metric"), t.ORDER_METRICS)
    raw = _need(obj, path, "value")
    where = _join(path, "value")
    if metric in ("first_order_date", "last_order_date"):
        op = _choice(_need(obj, path, "op"), _join(path, "op"), t.DATE_OPS)
        if obj.get("within_days") is not None:
            raise _fail(_join(path, "within_days"), "date metrics take no window")
        value = _date_value(op, obj, path)
        assert value is not None
        return t.OrderAggregate(metric=metric, op=op, value=value)  # type: ignore[arg-type]
    op = _choice(_need(obj, path, "op"), _join(path, "op"), t.NUMBER_OPS)
    number: int | float = (
        _int(raw, where, 0, MAX_COUNT) if metric == "count" else _money(raw, where)
    )
    return t.OrderAggregate(
        metric=metric,  # type: ignore[arg-type]
        op=op,
        value=number,
        within_days=_days(obj, path),
    )


def _bought(obj: Mapping[str, AnyValue], path: str) -> t.Node:
    _object(obj, path, ("kind", "product_id", "category", "within_days", "negate"))
    product = obj.get("product_id")
    category = obj.get("category")
    if (product is None) == (category is None):
        raise _fail(path, "give exactly one of 'product_id' and 'category'")
    negate = False if obj.get("negate") is None else _bool(obj["negate"], _join(path, "negate"))
    return t.BoughtProduct(
        product_id=None if product is None else _int(product, _join(path, "product_id"), 1, 2**62),
        category=None if category is None else _text(category, _join(path, "category")),
        within_days=_days(obj, path),
        negate=negate,
    )


def _filter(obj: AnyValue, path: str) -> t.PropertyFilter:
    obj = _object(obj, path, ("path", "op", "value"))
    raw = _need(obj, path, "path")
    where = _join(path, "path")
    keys = raw.split(".") if isinstance(raw, str) else raw
    if not isinstance(keys, list) or not 1 <= len(keys) <= MAX_PATH:
        raise _fail(where, f"must be a property name or a list of 1 to {MAX_PATH} names")
    names = tuple(_key(k, where) for k in keys)
    op = _choice(_need(obj, path, "op"), _join(path, "op"), t.ATTRIBUTE_OPS)
    return t.PropertyFilter(path=names, op=op, value=_json_value(op, obj, path))


def _event(obj: Mapping[str, AnyValue], path: str) -> t.Node:
    _object(obj, path, ("kind", "name", "op", "count", "within_days", "filters"))
    name = _text(_need(obj, path, "name"), _join(path, "name"))
    op = _choice(obj.get("op", "at_least"), _join(path, "op"), t.EVENT_OPS)
    count = 0
    if op != "zero":
        low = 1 if op == "at_least" else 0
        count = _int(obj.get("count", 1), _join(path, "count"), low, MAX_COUNT)
    elif obj.get("count") not in (None, 0):
        raise _fail(_join(path, "count"), "'zero' takes no count")
    raw = obj.get("filters") or []
    where = _join(path, "filters")
    if not isinstance(raw, list) or len(raw) > MAX_FILTERS:
        raise _fail(where, f"must be a list of at most {MAX_FILTERS} filters")
    filters = tuple(_filter(item, _join(where, i)) for i, item in enumerate(raw))
    return t.Event(
        name=name,
        op=op,  # type: ignore[arg-type]
        count=count,
        within_days=_days(obj, path),
        filters=filters,
    )


def _engagement(obj: Mapping[str, AnyValue], path: str) -> t.Node:
    _object(obj, path, ("kind", "action", "within_days", "count"))
    action = _choice(_need(obj, path, "action"), _join(path, "action"), ("opened", "clicked"))
    count = _int(obj.get("count", 1), _join(path, "count"), 1, MAX_COUNT)
    return t.Engagement(action=action, within_days=_days(obj, path), count=count)  # type: ignore[arg-type]


_LEAVES: dict[str, Callable[[Mapping[str, AnyValue], str], t.Node]] = {
    "profile": _profile,
    "attribute": _attribute,
    "location": _location,
    "consent": _consent,
    "list": _list,
    "tag": _tag,
    "order": _order,
    "bought": _bought,
    "event": _event,
    "engagement": _engagement,
}


# -- tree → JSON --------------------------------------------------------------------------


def _json_scalar(value: object) -> AnyValue:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, tuple):
        return list(value)
    return value


def to_json(node: t.Node) -> dict[str, AnyValue]:
    """The JSON form of a tree; ``parse_segment(to_json(node)) == node``."""
    match node:
        case t.All(conditions=items) | t.Any(conditions=items):
            kind = "all" if isinstance(node, t.All) else "any"
            return {"kind": kind, "conditions": [to_json(n) for n in items]}
        case t.Not(condition=inner):
            return {"kind": "not", "condition": to_json(inner)}
        case t.Profile() | t.Location():
            kind = "profile" if isinstance(node, t.Profile) else "location"
            return _with_value(kind, {"field": node.field, "op": node.op}, node.value)
        case t.Attribute():
            return _with_value("attribute", {"key": node.key, "op": node.op}, node.value)
        case t.Consent():
            return {"kind": "consent", "channel": node.channel, "status": list(node.statuses)}
        case t.ListMember():
            return {"kind": "list", "list": node.list, "status": list(node.statuses)}
        case t.Tag():
            return {"kind": "tag", "tag": node.tag, "present": node.present}
        case t.OrderAggregate():
            out = {"metric": node.metric, "op": node.op, "value": _json_scalar(node.value)}
            return {"kind": "order", **out, "within_days": node.within_days}
        case t.BoughtProduct():
            return {
                "kind": "bought",
                **({"product_id": node.product_id} if node.product_id is not None else {}),
                **({"category": node.category} if node.category is not None else {}),
                "within_days": node.within_days,
                "negate": node.negate,
            }
        case t.Event():
            return _event_json(node)
        case t.Engagement():
            return {
                "kind": "engagement",
                "action": node.action,
                "within_days": node.within_days,
                "count": node.count,
            }
    raise TypeError(f"not a segment node: {node!r}")  # pragma: no cover


def _with_value(kind: str, head: dict[str, AnyValue], value: object) -> dict[str, AnyValue]:
    out = {"kind": kind, **head}
    if value is not None:
        out["value"] = _json_scalar(value)
    return out


def _event_json(node: t.Event) -> dict[str, AnyValue]:
    filters = []
    for f in node.filters:
        item: dict[str, AnyValue] = {"path": list(f.path), "op": f.op}
        if f.value is not None:
            item["value"] = f.value
        filters.append(item)
    out: dict[str, AnyValue] = {"kind": "event", "name": node.name, "op": node.op}
    if node.op != "zero":
        out["count"] = node.count
    return {**out, "within_days": node.within_days, "filters": filters}
