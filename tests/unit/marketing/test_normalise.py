"""Normal forms of contact fields: edge cases and properties (hypothesis)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from courriel.errors import InvalidInput
from courriel.marketing.contacts import normalise_fields
from courriel.marketing.normalise import (
    ISO_COUNTRIES,
    MAX_ATTRIBUTES,
    check_attributes,
    normalise_country,
    normalise_email,
    normalise_phone,
    normalise_tags,
    normalise_text,
    normalise_time_zone,
)
from courriel.marketing.types import ContactData


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (" Ann@Example.COM ", "ann@example.com"),
        ("jo@Bücher.example", "jo@xn--bcher-kva.example"),
        ("a.b+tag@sub.example.org.", "a.b+tag@sub.example.org"),
    ],
)
def test_email(raw: str, expected: str) -> None:
    assert normalise_email(raw) == expected


@pytest.mark.parametrize("raw", ["", "no-at", "a@", "@example.com", "a..b@example.com", "a@b"])
def test_bad_email_names_the_field(raw: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        normalise_email(raw, field="rows/3/email")
    assert caught.value.field == "rows/3/email"


@pytest.mark.parametrize(
    ("raw", "country", "expected"),
    [
        ("+33 6 12 34 56 78", None, "+33612345678"),
        ("06 12 34 56 78", "FR", "+33612345678"),
        ("(020) 7946-0018", "GB", "+442079460018"),
        ("+1 (415) 555-2671", "FR", "+14155552671"),  # + wins over the country
        ("  ", "FR", None),
    ],
)
def test_phone(raw: str, country: str | None, expected: str | None) -> None:
    assert normalise_phone(raw, country=country) == expected


@pytest.mark.parametrize(
    ("raw", "country"),
    [("06 12 34 56 78", None), ("12", "FR"), ("call me", "FR"), ("+999 123", None)],
)
def test_bad_phone(raw: str, country: str | None) -> None:
    with pytest.raises(InvalidInput) as caught:
        normalise_phone(raw, country=country)
    assert caught.value.field == "phone"


def test_country_codes_only() -> None:
    assert normalise_country(" fr ") == "FR"
    assert normalise_country("") is None
    assert len(ISO_COUNTRIES) == 249
    for bad in ("France", "FRA", "XX", "UK"):
        with pytest.raises(InvalidInput):
            normalise_country(bad)


def test_time_zone() -> None:
    assert normalise_time_zone("Europe/Paris") == "Europe/Paris"
    assert normalise_time_zone("UTC") == "UTC"
    for bad in ("Paris", "europe/paris", "../etc/passwd", "+02:00"):
        with pytest.raises(InvalidInput) as caught:
            normalise_time_zone(bad)
        assert caught.value.field == "time_zone"


def test_text_and_tags() -> None:
    assert normalise_text("  Zoë ", field="first_name", max_length=10) == "Zoë"
    assert normalise_text("   ", field="first_name", max_length=10) is None
    with pytest.raises(InvalidInput):
        normalise_text("a\x00b", field="city", max_length=10)
    assert normalise_tags([" b", "a", "b "]) == ("a", "b")
    with pytest.raises(InvalidInput) as caught:
        normalise_tags(["ok", " "])
    assert caught.value.field == "tags/1"
    with pytest.raises(InvalidInput):
        normalise_tags("vip")  # a string is not a list of tags


def test_attributes_limits() -> None:
    assert check_attributes({"a": [1, {"b": None}], "c": 1.5}) == {"a": [1, {"b": None}], "c": 1.5}
    too_many: dict[str, object] = {f"k{i}": i for i in range(MAX_ATTRIBUTES + 1)}
    cases: list[tuple[dict[str, object], str]] = [
        (too_many, "attributes"),
        ({"big": "x" * 70_000}, "attributes"),
        ({"": 1}, "attributes"),
        ({"nan": float("nan")}, "attributes/nan"),
        ({"obj": object()}, "attributes/obj"),
    ]
    for bad, field in cases:
        with pytest.raises(InvalidInput) as caught:
            check_attributes(bad)
        assert caught.value.field == field
    # Under the limit but over the quick bound: measured exactly, and accepted.
    assert check_attributes({"big": "é" * 30_000})


def test_fields_phone_region_from_country() -> None:
    values = normalise_fields(ContactData(email="a@example.com", phone="0612345678", country="fr"))
    assert values == {"country": "FR", "phone": "+33612345678"}
    values = normalise_fields(
        ContactData(email="a@example.com", phone="0612345678"), stored_country="FR"
    )
    assert values == {"phone": "+33612345678"}
    assert normalise_fields(ContactData(email="a@example.com", city="")) == {"city": None}


@given(st.text(max_size=80))
def test_email_never_raises_anything_else(raw: str) -> None:
    try:
        result = normalise_email(raw)
    except InvalidInput:
        return
    assert normalise_email(result) == result


@given(st.text(max_size=40), st.sampled_from([None, "FR", "US", "GB", "DE"]))
def test_phone_never_raises_anything_else(raw: str, country: str | None) -> None:
    try:
        result = normalise_phone(raw, country=country)
    except InvalidInput:
        return
    assert result is None or (result.startswith("+") and result[1:].isdigit())


@given(st.lists(st.text(max_size=70), max_size=5))
def test_tags_never_raise_anything_else(raw: list[str]) -> None:
    try:
        tags = normalise_tags(raw)
    except InvalidInput:
        return
    assert list(tags) == sorted(set(tags))
    assert all(1 <= len(tag) <= 64 for tag in tags)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=10,
)


@given(st.dictionaries(st.text(max_size=70), json_values, max_size=8))
def test_attributes_never_raise_anything_else(raw: dict[str, object]) -> None:
    try:
        checked = check_attributes(raw)
    except InvalidInput:
        return
    assert checked == raw
