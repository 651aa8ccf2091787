"""Segment definitions: parsing, precise error paths, limits and the JSON round trip."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from courriel.errors import InvalidInput
from courriel.marketing.segments import tree as t
from courriel.marketing.segments.parse import MAX_CONDITIONS, MAX_DEPTH, parse_segment, to_json

EXAMPLE: dict[str, Any] = {
    "kind": "all",
    "conditions": [
        {"kind": "profile", "field": "email", "op": "ends_with", "value": "@example.com"},
        {"kind": "profile", "field": "created_at", "op": "after", "value": "2026-01-01"},
        {"kind": "attribute", "key": "vip", "op": "eq", "value": True},
        {"kind": "attribute", "key": "score", "op": "gte", "value": 10},
        {"kind": "location", "field": "country", "op": "in", "value": ["FR", "DE"]},
        {"kind": "consent", "channel": "email", "status": "subscribed"},
        {"kind": "list", "list": "Newsletter"},
        {"kind": "tag", "tag": "vip", "present": False},
        {"kind": "order", "metric": "total_spent", "op": "gt", "value": 99.5, "within_days": 30},
        {"kind": "order", "metric": "last_order_date", "op": "within_days", "value": 90},
        {"kind": "bought", "category": "Shoes", "within_days": 90},
        {
            "kind": "any",
            "conditions": [
                {
                    "kind": "event",
                    "name": "Viewed Product",
                    "op": "at_least",
                    "count": 3,
                    "within_days": 30,
                    "filters": [{"path": "Item.Price", "op": "gt", "value": 20}],
                },
                {"kind": "not", "condition": {"kind": "engagement", "action": "opened"}},
            ],
        },
    ],
}


def test_example_parses_into_the_expected_tree() -> None:
    node = parse_segment(EXAMPLE)
    assert isinstance(node, t.All)
    assert node.conditions[1] == t.Profile(
        field="created_at", op="after", value=datetime(2026, 1, 1, tzinfo=UTC)
    )
    assert node.conditions[5] == t.Consent(channel="email", statuses=("subscribed",))
    assert node.conditions[6] == t.ListMember(list="Newsletter", statuses=("subscribed",))
    event = node.conditions[11].conditions[0]  # type: ignore[union-attr]
    assert event.filters == (t.PropertyFilter(path=("Item", "Price"), op="gt", value=20),)


def test_round_trip() -> None:
    node = parse_segment(EXAMPLE)
    assert parse_segment(to_json(node)) == node
    assert to_json(parse_segment(to_json(node))) == to_json(node)


@pytest.mark.parametrize(
    ("definition", "field", "words"),
    [
        ([], "", "JSON object"),
        ({"conditions": []}, "kind", "missing"),
        ({"kind": "every"}, "kind", "unknown condition kind"),
        ({"kind": "all"}, "conditions", "missing"),
        ({"kind": "all", "conditions": {}}, "conditions", "must be a list"),
        ({"kind": "all", "conditions": [], "x": 1}, "x", "unexpected field"),
        (
            {"kind": "all", "conditions": [{"kind": "tag", "tag": "a"}, 3]},
            "conditions/1",
            "JSON object",
        ),
        (
            {"kind": "all", "conditions": [{"kind": "profile", "field": "age", "op": "eq"}]},
            "conditions/0/field",
            "one of",
        ),
        (
            {"kind": "any", "conditions": [{"kind": "profile", "field": "email", "op": "gt"}]},
            "conditions/0/op",
            "one of",
        ),
        (
            {
                "kind": "all",
                "conditions": [{"kind": "profile", "field": "email", "op": "contains"}],
            },
            "conditions/0/value",
            "missing",
        ),
        (
            {
                "kind": "all",
                "conditions": [{"kind": "profile", "field": "email", "op": "is_set", "value": "x"}],
            },
            "conditions/0/value",
            "takes no value",
        ),
        (
            {
                "kind": "all",
                "conditions": [
                    {"kind": "profile", "field": "created_at", "op": "before", "value": "soon"}
                ],
            },
            "conditions/0/value",
            "ISO 8601",
        ),
        (
            {
                "kind": "all",
                "conditions": [
                    {"kind": "tag", "tag": "a"},
                    {"kind": "tag", "tag": "b"},
                    {"kind": "event", "name": "X", "within_days": 0},
                ],
            },
            "conditions/2/within_days",
            "between 1 and",
        ),
        (
            {"kind": "not", "condition": {"kind": "event", "name": "X", "count": "3"}},
            "condition/count",
            "whole number",
        ),
        (
            {"kind": "not", "condition": {"kind": "event", "name": "X", "count": True}},
            "condition/count",
            "whole number",
        ),
        (
            {"kind": "not", "condition": {"kind": "event", "name": "X", "op": "zero", "count": 2}},
            "condition/count",
            "takes no count",
        ),
        (
            {
                "kind": "not",
                "condition": {
                    "kind": "event",
                    "name": "X",
                    "filters": [{"path": "a", "op": "gt", "value": "x"}],
                },
            },
            "condition/filters/0/op",
            "a text value takes",
        ),
        (
            {
                "kind": "not",
                "condition": {
                    "kind": "event",
                    "name": "X",
                    "filters": [{"path": "a.b'c", "op": "eq", "value": "x"}],
                },
            },
            "condition/filters/0/path",
            "letters",
        ),
        (
            {
                "kind": "not",
                "condition": {"kind": "attribute", "key": "a", "op": "lt", "value": True},
            },
            "condition/op",
            "true/false",
        ),
        (
            {
                "kind": "not",
                "condition": {"kind": "attribute", "key": "a", "op": "eq", "value": []},
            },
            "condition/value",
            "text, a number",
        ),
        (
            {"kind": "not", "condition": {"kind": "consent", "channel": "fax", "status": []}},
            "condition/channel",
            "one of",
        ),
        (
            {
                "kind": "not",
                "condition": {"kind": "consent", "channel": "sms", "status": ["subscribed", "x"]},
            },
            "condition/status/1",
            "one of",
        ),
        (
            {"kind": "not", "condition": {"kind": "bought", "product_id": 3, "category": "x"}},
            "condition",
            "exactly one",
        ),
        (
            {
                "kind": "not",
                "condition": {"kind": "order", "metric": "total_spent", "op": "gt", "value": -1},
            },
            "condition/value",
            "negative",
        ),
        (
            {
                "kind": "not",
                "condition": {
                    "kind": "order",
                    "metric": "first_order_date",
                    "op": "before",
                    "value": "2026-01-01",
                    "within_days": 3,
                },
            },
            "condition/within_days",
            "no window",
        ),
        (
            {
                "kind": "not",
                "condition": {"kind": "location", "field": "city", "op": "in", "value": []},
            },
            "condition/value",
            "list of 1",
        ),
        (
            {"kind": "not", "condition": {"kind": "list", "list": 0}},
            "condition/list",
            "between 1",
        ),
        (
            {"kind": "not", "condition": {"kind": "tag", "tag": "a\nb"}},
            "condition/tag",
            "control",
        ),
    ],
)
def test_errors_name_the_offending_field(definition: Any, field: str, words: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_segment(definition)
    assert caught.value.field == field
    assert words in str(caught.value)


def _nested(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = {"kind": "tag", "tag": "x"}
    for _ in range(depth):
        node = {"kind": "all", "conditions": [node]}
    return node


def test_depth_limit() -> None:
    parse_segment(_nested(MAX_DEPTH - 1))
    with pytest.raises(InvalidInput, match="deeper") as caught:
        parse_segment(_nested(MAX_DEPTH))
    assert caught.value.field is not None
    assert caught.value.field.count("conditions/0") == MAX_DEPTH - 1


def test_condition_limit() -> None:
    many = [{"kind": "tag", "tag": str(i)} for i in range(MAX_CONDITIONS)]
    parse_segment({"kind": "any", "conditions": many})
    with pytest.raises(InvalidInput, match="at most") as caught:
        parse_segment({"kind": "any", "conditions": [*many, {"kind": "tag", "tag": "z"}]})
    assert caught.value.field == f"conditions/{MAX_CONDITIONS}"


def test_defaults_and_normalisation() -> None:
    node = parse_segment(
        {"kind": "list", "list": 7, "status": ["pending", "subscribed", "pending"]}
    )
    assert node == t.ListMember(list=7, statuses=("subscribed", "pending"))
    event = parse_segment({"kind": "event", "name": "Placed Order"})
    assert event == t.Event(name="Placed Order", op="at_least", count=1)
    assert parse_segment({"kind": "event", "name": "X", "count": 2.0}) == t.Event(
        name="X", op="at_least", count=2
    )
    when = parse_segment(
        {
            "kind": "profile",
            "field": "created_at",
            "op": "before",
            "value": "2026-03-01T12:00:00+02:00",
        }
    )
    assert when == t.Profile(
        field="created_at", op="before", value=datetime(2026, 3, 1, 10, tzinfo=UTC)
    )


# Any JSON thrown at the parser: a tree or InvalidInput, never another exception.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "kind",
                    "conditions",
                    "condition",
                    "field",
                    "op",
                    "value",
                    "key",
                    "name",
                    "count",
                    "within_days",
                    "filters",
                    "path",
                    "status",
                    "channel",
                    "list",
                    "tag",
                    "metric",
                    "category",
                    "product_id",
                    "negate",
                    "present",
                    "action",
                    "x",
                ]
            ),
            children,
            max_size=6,
        )
    ),
    max_leaves=20,
)
kinds = st.sampled_from(
    [
        "all",
        "any",
        "not",
        "profile",
        "attribute",
        "location",
        "consent",
        "list",
        "tag",
        "order",
        "bought",
        "event",
        "engagement",
    ]
)


@settings(max_examples=300)
@given(json_values, kinds)
def test_fuzz_only_invalid_input(value: Any, kind: str) -> None:
    if isinstance(value, dict):
        value = {**value, "kind": kind}
    try:
        node = parse_segment(value)
    except InvalidInput as exc:
        assert exc.field is not None
        return
    assert parse_segment(to_json(node)) == node
