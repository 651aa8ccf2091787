"""Condition tree → one SQL boolean over ``contacts``, identical on SQLite and PostgreSQL.

Owns: the SQL form of every condition kind and the two-valued logic of the tree
(docs/segments.md states the semantics; reference.py implements them in Python).

Invariants:
- Every leaf compiles to an expression that is TRUE or FALSE, never NULL, so that
  ``Not`` is plain negation (SQL's three-valued logic would drop contacts with a NULL
  field from both a condition and its negation).
- No Python-side filtering: membership is one ``SELECT contacts.id … WHERE <expr>``.
- Conditions on other tables are semi-joins ``contacts.id [NOT] IN (SELECT contact_id …)``
  over an index-friendly, uncorrelated subquery (one pass over the window of orders or
  events, grouped when a count matters), never a correlated subquery per contact: on a
  million contacts that is what keeps a count fast. Subqueries select
  ``coalesce(contact_id, 0)`` (``owner_of``): a NULL in an IN list would make the test
  unknown instead of false. A plain exclusion ("never did X") is ``Absent``: NOT EXISTS
  on PostgreSQL (an anti-join), NOT IN on SQLite, the same rows either way.
- Text comparisons fold ASCII letters only (A-Z → a-z) on both engines: SQLite's
  ``lower()`` folds only ASCII, so PostgreSQL uses ``translate()`` rather than its
  locale-dependent ``lower()``.
- The SQL that differs by dialect (ASCII folding, JSON access, the form of an exclusion)
  lives in sqlparts.py, as constructs compiled through SQLAlchemy's ``@compiles``.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any as AnyValue
from typing import cast

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import BinaryExpression
from sqlalchemy.sql.expression import FromClause
from sqlalchemy.sql.selectable import ScalarSelect

from courriel.marketing.segments import tree as t
from courriel.marketing.segments.sqlparts import (
    Absent,
    AnyIn,
    AsciiLower,
    JsonHas,
    JsonPart,
    SmallFirst,
    fold,
    owner_of,
)
from courriel.storage.models.marketing import (
    contact_tags,
    contacts,
    events,
    list_members,
    lists,
    order_lines,
    orders,
    product_categories,
)

__all__ = [
    "ENGAGEMENT_EVENTS",
    "compile_segment",
    "contact_ids_query",
    "count_query",
    "fold",
    "like_pattern",
    "money_minor",
]

_OPERATORS: dict[str, Callable[[AnyValue, AnyValue], AnyValue]] = {
    "eq": operator.eq,
    "neq": operator.ne,
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
}
ENGAGEMENT_EVENTS = {"opened": "Opened Email", "clicked": "Clicked Email"}
_LETTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_MAX_SPELLINGS = 64


def money_minor(value: float) -> int:
    """A money amount in major units → minor units (round half up to the cent)."""
    return int((Decimal(str(value)) * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def like_pattern(op: str, value: str) -> str:
    r"""A LIKE pattern (escape character ``\``) for contains / starts_with / ends_with."""
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    if op == "contains":
        return f"%{escaped}%"
    if op == "starts_with":
        return f"{escaped}%"
    return f"%{escaped}"


# -- the compiler -----------------------------------------------------------------------


def contact_ids_query(node: t.Node, *, now: datetime | None = None) -> Select[tuple[int]]:
    """``SELECT contacts.id WHERE <segment> ORDER BY id`` (page it with ``id > cursor``).

    Args:
        node: the segment.
        now: the time windows count back from (default: the current time). A campaign
            that freezes its audience passes its start time.
    """
    where = compile_segment(node, now=now or datetime.now(UTC))
    return select(contacts.c.id).where(where).order_by(contacts.c.id)


def compile_segment(node: t.Node, *, now: datetime) -> ColumnElement[bool]:
    """The segment as a boolean over ``contacts`` (never NULL).

    Args:
        node: a valid tree (from :func:`~courriel.marketing.segments.parse.parse_segment`).
        now: the time windows ("in the last 30 days") are counted back from.
    """
    return _Compiler(now).node(node)


# Up to this many contacts in a grouped condition, SmallFirst probes each one's exclusions.
SMALL_DRIVER = 10_000


def count_query(node: t.Node, *, now: datetime) -> Select[AnyValue]:
    """``SELECT <the number of members>``: the count :func:`contact_ids_query` would list.

    Usually ``count(*) … WHERE <segment>``. A top-level ``all`` with a grouped condition (a
    count of events or orders with HAVING) beside an exclusion is rendered as
    :class:`~courriel.marketing.segments.sqlparts.SmallFirst` instead, so that PostgreSQL
    sees how many contacts the grouped condition selects before it plans the exclusion.
    """
    plain = select(func.count()).select_from(contacts).where(compile_segment(node, now=now))
    split = _grouped_driver(node, now)
    if split is None:
        return plain
    grouped, others = split
    driver = grouped.cte("segment_driver")
    joined = driver.join(contacts, contacts.c.id == driver.c.contact_id)

    def counted(per_row: bool) -> Select[AnyValue]:
        compiler = _Compiler(now, per_row=per_row)
        where = [compiler.node(n) for n in others]
        return select(func.count()).select_from(joined).where(*where)

    return select(
        SmallFirst(
            plain=plain,
            probe=select(driver.c.contact_id),
            small=SMALL_DRIVER,
            small_count=counted(True),
            large_count=counted(False),
        )
    )


def _grouped_driver(
    node: t.Node, now: datetime
) -> tuple[Select[AnyValue], tuple[t.Node, ...]] | None:
    """The grouped id list (one row per contact) of a top-level ``all`` and its other
    conditions, when one of those is an exclusion; None otherwise."""
    if not isinstance(node, t.All) or len(node.conditions) < 2:
        return None
    compiler = _Compiler(now)
    compiled = [compiler.node(n) for n in node.conditions]
    if not any(isinstance(c, Absent) for c in compiled):
        return None
    for index, expr in enumerate(compiled):
        listed = _semi_join_list(expr)
        if listed is not None and listed._having_criteria:
            # GROUP BY makes the ids distinct, so joining contacts to them keeps one row each.
            ids = listed.with_only_columns(listed.selected_columns[0].label("contact_id"))
            others = node.conditions[:index] + node.conditions[index + 1 :]
            return ids, others
    return None


class _Compiler:
    def __init__(self, now: datetime, *, per_row: bool = False) -> None:
        self.now = now
        self.per_row = per_row  # exclusions as per-contact probes (sqlparts.Absent)

    def absent(
        self, owner: ColumnElement[AnyValue], source: FromClause, wheres: list[ColumnElement[bool]]
    ) -> ColumnElement[bool]:
        return Absent(owner, source, wheres, per_row=self.per_row)

    def since(self, days: int) -> datetime:
        return self.now - timedelta(days=days)

    def node(self, node: t.Node) -> ColumnElement[bool]:
        match node:
            case t.All(conditions=items):
                return and_(*(self.node(n) for n in items)) if items else true()
            case t.Any(conditions=items):
                return self.any(items) if items else false()
            case t.Not(condition=inner):
                return not_(self.node(inner))
            case t.Profile() | t.Location():
                return self.column(node)
            case t.Attribute():
                return self.attribute(node)
            case t.Consent():
                column = (
                    contacts.c.email_status if node.channel == "email" else contacts.c.sms_status
                )
                return column.in_(node.statuses)
            case t.ListMember() | t.Tag():
                return self.membership(node)
            case t.OrderAggregate():
                return self.order(node)
            case t.BoughtProduct():
                return self.bought(node)
            case t.Event() | t.Engagement():
                return self.event(node)
        raise TypeError(f"not a segment node: {node!r}")  # pragma: no cover

    def attribute(self, node: t.Attribute) -> ColumnElement[bool]:
        exact = json_condition(contacts.c.attributes, (node.key,), node.op, node.value)
        if node.op == "eq" and isinstance(node.value, bool):
            return JsonHas(node.key, node.value, exact)
        return exact

    def any(self, items: tuple[t.Node, ...]) -> ColumnElement[bool]:
        """An OR; two or more semi-joins (``contacts.id IN (SELECT …)``) become one AnyIn."""
        compiled = [self.node(n) for n in items]
        lists = [ids for ids in map(_semi_join_list, compiled) if ids is not None]
        if len(lists) < 2:
            return or_(*compiled)
        rest = [c for c in compiled if _semi_join_list(c) is None]
        return or_(AnyIn(lists), *rest)

    def column(self, node: t.Profile | t.Location) -> ColumnElement[bool]:
        column = contacts.c[node.field]
        if node.field == "created_at":
            return self.date(column, node.op, node.value)
        if node.op in ("in", "not_in"):
            assert isinstance(node.value, tuple)
            matched = _equal_any(column, node.value)
            return matched if node.op == "in" else not_(matched)
        assert node.value is None or isinstance(node.value, str)
        return text_condition(column, node.op, node.value)

    def date(self, column: ColumnElement[AnyValue], op: str, value: object) -> ColumnElement[bool]:
        if op in ("is_set", "is_not_set"):
            return column.is_not(None) if op == "is_set" else column.is_(None)
        if op in ("before", "more_than_days_ago"):
            bound = value if op == "before" else self.since(_days(value))
            return and_(column.is_not(None), column < bound)
        bound = value if op == "after" else self.since(_days(value))
        # "after" is strict; "within_days" includes its boundary (now - N days).
        return and_(column.is_not(None), column > bound if op == "after" else column >= bound)

    def membership(self, node: t.ListMember | t.Tag) -> ColumnElement[bool]:
        if isinstance(node, t.Tag):
            if not node.present:
                return self.absent(
                    contact_tags.c.contact_id, contact_tags, [contact_tags.c.tag == node.tag]
                )
            tagged = select(contact_tags.c.contact_id).where(contact_tags.c.tag == node.tag)
            return contacts.c.id.in_(tagged)
        if isinstance(node.list, int):
            list_id: ColumnElement[AnyValue] = literal(node.list)
        else:
            list_id = select(lists.c.id).where(lists.c.name == node.list).scalar_subquery()
        members = select(list_members.c.contact_id).where(
            list_members.c.list_id == list_id, list_members.c.status.in_(node.statuses)
        )
        return contacts.c.id.in_(members)

    def order(self, node: t.OrderAggregate) -> ColumnElement[bool]:
        if node.metric in ("first_order_date", "last_order_date"):
            column = contacts.c[node.metric.replace("_date", "_at")]
            return self.date(column, node.op, node.value)
        assert not isinstance(node.value, datetime)
        if node.within_days is None:
            return self.order_columns(node.metric, node.op, node.value)
        counted = [
            orders.c.status != "cancelled",
            orders.c.placed_at >= self.since(node.within_days),
        ]
        spent = func.sum(orders.c.total_minor - orders.c.refunded_minor)
        count = func.count()
        if node.metric == "count":
            having = _compare(count, node.op, int(node.value))
        elif node.metric == "total_spent":
            having = _compare(spent, node.op, money_minor(node.value))
        else:
            # average = spent / count, compared without division (exact in integers).
            having = _compare(spent, node.op, money_minor(node.value) * count)
        owner = owner_of(orders.c.contact_id)
        grouped = select(owner).where(*counted).group_by(owner)
        # Contacts without orders in the window have count 0 and total 0 (and no average):
        # when 0 satisfies the condition they are members, so select by exclusion.
        if node.metric != "average_value" and _holds(node.op, 0, node.value, node.metric):
            if node.metric == "count" and not any(
                _holds(node.op, n, node.value, "count") for n in (1, 2, 3)
            ):
                # Only 0 satisfies it ("no order in the window"): no grouping needed.
                return self.absent(orders.c.contact_id, orders, counted)
            return contacts.c.id.not_in(grouped.having(not_(having)))
        return contacts.c.id.in_(grouped.having(having))

    def order_columns(self, metric: str, op: str, value: float) -> ColumnElement[bool]:
        if metric == "count":
            return _compare(contacts.c.order_count, op, int(value))
        if metric == "total_spent":
            return _compare(contacts.c.total_spent_minor, op, money_minor(value))
        # No orders, no average: every average condition is false for such a contact.
        average = _compare(
            contacts.c.total_spent_minor, op, money_minor(value) * contacts.c.order_count
        )
        return and_(contacts.c.order_count > 0, average)

    def bought(self, node: t.BoughtProduct) -> ColumnElement[bool]:
        # Order lines carry copies of their order's contact, date and status (kept in step
        # by the writer, see storage/models/marketing.py), so "bought" reads one index
        # range of ix_order_lines_product_placed per product and never joins orders.
        if node.product_id is not None:
            line_match = order_lines.c.product_id == node.product_id
        else:
            in_category = select(product_categories.c.product_id).where(
                product_categories.c.category == node.category
            )
            line_match = order_lines.c.product_id.in_(in_category)
        wheres: list[ColumnElement[bool]] = [line_match, order_lines.c.status != "cancelled"]
        if node.within_days is not None:
            wheres.append(order_lines.c.placed_at >= self.since(node.within_days))
        if node.negate:
            return self.absent(order_lines.c.contact_id, order_lines, wheres)
        buyers = select(owner_of(order_lines.c.contact_id)).where(*wheres)
        return contacts.c.id.in_(buyers)

    def event(self, node: t.Event | t.Engagement) -> ColumnElement[bool]:
        if isinstance(node, t.Engagement):
            node = t.Event(
                name=ENGAGEMENT_EVENTS[node.action],
                op="at_least",
                count=node.count,
                within_days=node.within_days,
            )
        wheres = [events.c.name == node.name]
        if node.within_days is not None:
            wheres.append(events.c.occurred_at >= self.since(node.within_days))
        wheres += [json_condition(events.c.properties, f.path, f.op, f.value) for f in node.filters]
        if node.op == "zero" or (node.op in ("at_most", "exactly") and node.count == 0):
            return self.absent(events.c.contact_id, events, wheres)
        owner = owner_of(events.c.contact_id)
        did = select(owner).where(*wheres)
        if node.op == "at_least" and node.count == 1:
            return contacts.c.id.in_(did)
        grouped = did.group_by(owner)
        if node.op == "at_least":
            return contacts.c.id.in_(grouped.having(func.count() >= node.count))
        if node.op == "exactly":
            return contacts.c.id.in_(grouped.having(func.count() == node.count))
        # at_most N (N ≥ 1): everyone but those who did it more than N times.
        return contacts.c.id.not_in(grouped.having(func.count() > node.count))


def _semi_join_list(expr: ColumnElement[bool]) -> Select[AnyValue] | None:
    """The SELECT of ``contacts.id IN (SELECT …)``, None for any other expression."""
    if not (
        isinstance(expr, BinaryExpression)
        and expr.operator is operators.in_op
        and expr.left is contacts.c.id
        and isinstance(expr.right, ScalarSelect)
    ):
        return None
    inner = expr.right.element
    return inner if isinstance(inner, Select) else None


def _days(value: object) -> int:
    assert isinstance(value, int)
    return value


def _compare(left: ColumnElement[AnyValue], op: str, right: AnyValue) -> ColumnElement[bool]:
    return cast("ColumnElement[bool]", _OPERATORS[op](left, right))


def _holds(op: str, left: int, value: float, metric: str) -> bool:
    """Does an aggregate of 0 (no orders in the window) satisfy ``op value``?"""
    right = int(value) if metric == "count" else money_minor(value)
    return bool(_OPERATORS[op](left, right))


def text_condition(
    column: ColumnElement[AnyValue], op: str, value: str | None
) -> ColumnElement[bool]:
    """A text operator on a nullable text column (never NULL; see docs/segments.md).

    is_set means not NULL and not empty; every other operator is false on NULL except
    ``neq``, which is the exact negation of ``eq``.
    """
    if op in ("is_set", "is_not_set"):
        is_set = and_(column.is_not(None), column != "")
        return is_set if op == "is_set" else not_(is_set)
    assert value is not None
    if op in ("eq", "neq"):
        equal = _equal_any(column, (value,))
        return equal if op == "eq" else not_(equal)
    folded = AsciiLower(column)
    return and_(column.is_not(None), folded.like(like_pattern(op, fold(value)), escape="\\"))


def case_variants(value: str) -> list[str] | None:
    """Every ASCII-case spelling of ``value`` ("fr" → fr, fR, Fr, FR), None when over 16."""
    choices = [(c.lower(), c.upper()) if c in _LETTERS else (c,) for c in value]
    if sum(len(options) == 2 for options in choices) > 4:
        return None
    return ["".join(spelling) for spelling in itertools.product(*choices)]


def _equal_any(column: ColumnElement[AnyValue], values: Iterable[str]) -> ColumnElement[bool]:
    """ASCII case-insensitive equality with any of ``values``, never NULL.

    Short values (country codes, postal codes) compare the column itself with each of their
    spellings, which an index on the column serves on both engines; longer ones compare the
    folded column.
    """
    spellings: set[str] = set()
    for value in values:
        variants = case_variants(value)
        if variants is None or len(spellings) + len(variants) > _MAX_SPELLINGS:
            folded = sorted({fold(v) for v in values})
            return and_(column.is_not(None), AsciiLower(column).in_(folded))
        spellings.update(variants)
    return and_(column.is_not(None), column.in_(sorted(spellings)))


def json_condition(
    column: ColumnElement[AnyValue], path: tuple[str, ...], op: str, value: t.Scalar
) -> ColumnElement[bool]:
    """An attribute/property condition; the value's JSON type chooses the comparison.

    A text value only matches JSON strings, a number only JSON numbers, a boolean only
    JSON booleans ("5" is not 5). is_set: present and not JSON null. ``neq`` is the
    negation of ``eq`` (true when the key is absent or holds another type).
    """
    kind = func.coalesce(JsonPart(column, path, "kind"), "absent")
    if op in ("is_set", "is_not_set"):
        is_set = kind.not_in(["absent", "null"])
        return is_set if op == "is_set" else not_(is_set)
    if op == "neq":
        return not_(json_condition(column, path, "eq", value))
    if isinstance(value, bool):
        flag = func.coalesce(JsonPart(column, path, "flag"), "absent")
        return flag == ("true" if value else "false")
    if isinstance(value, int | float):
        number = JsonPart(column, path, "number")
        return and_(kind == "number", _compare(number, op, float(value)))
    assert isinstance(value, str)
    return and_(kind == "string", text_condition(JsonPart(column, path, "text"), op, value))
