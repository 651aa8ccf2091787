"""The segment condition tree: typed, immutable nodes (the parser's output, the compiler's input).

Owns: the node classes and the closed vocabularies (fields, operators, metrics) they use.
docs/segments.md documents the JSON form and the semantics of every operator; the SQL
compiler (compile.py) and the reference evaluator (reference.py) implement those semantics.

Invariants:
- A tree built by :func:`courriel.marketing.segments.parse.parse_segment` is valid: every
  operator fits its field, every value has the type the operator needs, group depth ≤ 10,
  at most 200 leaf conditions. Code that builds nodes by hand must respect the same rules.
- Nodes are frozen and hashable (tuples, never lists), so a tree can key a cache.
- Money values (order totals) stay in the shop's major unit, as written in JSON; the
  compiler converts them to minor units (``round(value × 100)``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, TypeAlias

__all__ = [
    "ATTRIBUTE_OPS",
    "DATE_OPS",
    "EVENT_OPS",
    "LOCATION_FIELDS",
    "NUMBER_OPS",
    "PROFILE_DATE_FIELDS",
    "PROFILE_TEXT_FIELDS",
    "TEXT_OPS",
    "All",
    "Any",
    "Attribute",
    "BoughtProduct",
    "Consent",
    "Engagement",
    "Event",
    "ListMember",
    "Location",
    "Node",
    "Not",
    "OrderAggregate",
    "Profile",
    "PropertyFilter",
    "Scalar",
    "Tag",
]

# A JSON scalar as a condition compares it: text, number or boolean (None for is_set).
Scalar: TypeAlias = str | int | float | bool | None

PROFILE_TEXT_FIELDS = ("email", "first_name", "last_name", "phone", "source")
PROFILE_DATE_FIELDS = ("created_at",)
LOCATION_FIELDS = ("country", "region", "city", "postal_code", "time_zone")
# Text operators (ASCII case-insensitive; see docs/segments.md).
TEXT_OPS = ("eq", "neq", "contains", "starts_with", "ends_with", "is_set", "is_not_set")
LOCATION_OPS = (*TEXT_OPS, "in", "not_in")
NUMBER_OPS = ("eq", "neq", "gt", "gte", "lt", "lte")
# Operators on timestamps: before/after take an ISO 8601 time, the others a number of days.
DATE_OPS = ("before", "after", "within_days", "more_than_days_ago")
PROFILE_DATE_OPS = (*DATE_OPS, "is_set", "is_not_set")
# Operators on a JSON value (a custom attribute, an event property): text operators for
# a string value, number operators for a number, eq/neq for a boolean.
ATTRIBUTE_OPS = (*TEXT_OPS, "gt", "gte", "lt", "lte")
EVENT_OPS = ("at_least", "at_most", "exactly", "zero")
ORDER_METRICS = ("count", "total_spent", "average_value", "first_order_date", "last_order_date")
CONSENT_STATUSES = ("subscribed", "unsubscribed", "pending", "never")
LIST_STATUSES = ("subscribed", "pending", "unsubscribed")

ProfileField = Literal["email", "first_name", "last_name", "phone", "source", "created_at"]
LocationField = Literal["country", "region", "city", "postal_code", "time_zone"]
OrderMetric = Literal[
    "count", "total_spent", "average_value", "first_order_date", "last_order_date"
]
EventOp = Literal["at_least", "at_most", "exactly", "zero"]


@dataclass(frozen=True, slots=True, kw_only=True)
class All:
    """True when every condition is true (an empty ``All`` is true: every contact)."""

    conditions: tuple[Node, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Any:
    """True when at least one condition is true (an empty ``Any`` is false)."""

    conditions: tuple[Node, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Not:
    """True when the condition is false (two-valued: no condition is ever unknown)."""

    condition: Node


@dataclass(frozen=True, slots=True, kw_only=True)
class Profile:
    """A contact column: a text field with TEXT_OPS, or ``created_at`` with PROFILE_DATE_OPS."""

    field: ProfileField
    op: str
    # str for text operators, datetime for before/after, int days for the *_days operators,
    # None for is_set/is_not_set.
    value: str | int | datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Attribute:
    """A top-level key of ``contacts.attributes``, compared by the type of ``value``."""

    key: str
    op: str
    value: Scalar = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Location:
    """A location column; ``in``/``not_in`` take a tuple of values, the others one value."""

    field: LocationField
    op: str
    value: str | tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Consent:
    """The contact's current consent status on a channel is one of ``statuses``."""

    channel: Literal["email", "sms"]
    statuses: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ListMember:
    """The contact is on a list (by id or by name) with one of ``statuses``."""

    list: int | str
    statuses: tuple[str, ...] = ("subscribed",)


@dataclass(frozen=True, slots=True, kw_only=True)
class Tag:
    """The contact has (``present``) or lacks (not ``present``) a tag (exact match)."""

    tag: str
    present: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderAggregate:
    """An aggregate of the contact's orders that count (cancelled orders never do).

    Without ``within_days`` the aggregate columns kept on contacts are read; with it,
    the orders placed in the last ``within_days`` days are aggregated (total = total −
    refunded). Date metrics take DATE_OPS and no window; the others take NUMBER_OPS.
    """

    metric: OrderMetric
    op: str
    value: int | float | datetime  # money in major units; days for the *_days operators
    within_days: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class BoughtProduct:
    """The contact has (or, with ``negate``, has not) a counted order with the product/category."""

    product_id: int | None = None
    category: str | None = None
    within_days: int | None = None
    negate: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class PropertyFilter:
    """A condition on an event property: ``path`` is the key path into ``properties``."""

    path: tuple[str, ...]
    op: str
    value: Scalar = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """The contact did the event (matching every filter) ``op`` ``count`` times in the window."""

    name: str
    op: EventOp
    count: int = 1  # ignored by "zero"
    within_days: int | None = None
    filters: tuple[PropertyFilter, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Engagement:
    """The contact opened/clicked campaign mail at least ``count`` times in the window.

    Reads the events "Opened Email" / "Clicked Email" that campaign tracking writes.
    """

    action: Literal["opened", "clicked"]
    within_days: int | None = None
    count: int = 1


Node: TypeAlias = (
    All
    | Any
    | Not
    | Profile
    | Attribute
    | Location
    | Consent
    | ListMember
    | Tag
    | OrderAggregate
    | BoughtProduct
    | Event
    | Engagement
)
