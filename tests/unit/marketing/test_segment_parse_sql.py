"""The SQL compiler's pure helpers and the shape of the SQL it writes per dialect."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy.dialects import postgresql, sqlite

from courriel.marketing.segments import contact_ids_query, parse_segment
from courriel.marketing.segments.compile import case_variants, fold, like_pattern, money_minor

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def sql(definition: dict[str, Any], dialect: Any) -> str:
    query = contact_ids_query(parse_segment(definition), now=NOW)
    return str(query.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


def test_fold_is_ascii_only() -> None:
    assert fold("ÉvA Ü") == "Éva Ü"


def test_case_variants() -> None:
    assert case_variants("fr") == ["fr", "fR", "Fr", "FR"]
    assert case_variants("75001") == ["75001"]
    assert case_variants("é") == ["é"]
    assert len(case_variants("ab-cd") or []) == 16
    assert case_variants("abcde") is None


@pytest.mark.parametrize(
    ("op", "value", "pattern"),
    [
        ("contains", "a_b", "%a\\_b%"),
        ("starts_with", "50%", "50\\%%"),
        ("ends_with", "x\\", "%x\\\\"),
    ],
)
def test_like_pattern_escapes_wildcards(op: str, value: str, pattern: str) -> None:
    assert like_pattern(op, value) == pattern


def test_money_minor_rounds_half_up() -> None:
    assert [money_minor(v) for v in (0, 19.99, 0.005, 100, 2.675)] == [0, 1999, 1, 10000, 268]


def test_short_values_compare_the_column_itself() -> None:
    country = {"kind": "location", "field": "country", "op": "eq", "value": "be"}
    text = sql(country, sqlite.dialect())
    assert "contacts.country IN ('BE', 'Be', 'bE', 'be')" in text
    email = {"kind": "profile", "field": "email", "op": "eq", "value": "ann@example.com"}
    assert "lower(contacts.email) IN ('ann@example.com')" in sql(email, sqlite.dialect())
    assert "translate(contacts.email, 'ABC" in sql(email, postgresql.dialect())


def test_exclusions_take_each_engines_best_form() -> None:
    never = {"kind": "event", "name": "Placed Order", "op": "zero", "within_days": 30}
    lite = sql(never, sqlite.dialect())
    assert "contacts.id NOT IN (SELECT coalesce(events.contact_id, 0)" in lite
    assert "= 1" not in lite
    pg = sql(never, postgresql.dialect())
    assert "NOT (EXISTS (SELECT" in pg and "events.contact_id = contacts.id" in pg


def test_counts_group_by_a_never_null_owner() -> None:
    viewed = {"kind": "event", "name": "Viewed Product", "count": 3, "within_days": 30}
    text = sql(viewed, postgresql.dialect())
    assert "GROUP BY coalesce(events.contact_id, 0)" in text
    assert "HAVING count(*) >= 3" in text


def test_an_or_of_semi_joins_is_one_union_on_postgresql_only() -> None:
    definition = {
        "kind": "all",
        "conditions": [
            {
                "kind": "any",
                "conditions": [
                    {"kind": "tag", "tag": "vip"},
                    {"kind": "engagement", "action": "opened", "within_days": 30},
                    {"kind": "consent", "channel": "sms", "status": ["subscribed"]},
                ],
            },
            {"kind": "consent", "channel": "email", "status": ["subscribed"]},
        ],
    }
    pg = sql(definition, postgresql.dialect())
    assert pg.count(" IN (SELECT") == 1
    assert "UNION ALL" in pg
    assert ") IS true) OR contacts.sms_status IN ('subscribed'))" in pg
    lite = sql(definition, sqlite.dialect())
    assert lite.count(" IN (SELECT") == 2
    assert "UNION" not in lite
    assert "WHERE ((contacts.id IN (SELECT" in lite
