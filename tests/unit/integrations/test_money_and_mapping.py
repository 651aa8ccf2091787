"""Pure parts of the integrations: money, event keys, signatures, and mapping fuzzing."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from courriel.errors import InvalidInput
from courriel.integrations import shopify, woocommerce
from courriel.integrations.webhooks import sign, verify_signature
from courriel.marketing.commerce import check_currency, event_key, from_minor, to_minor

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [
        ("12.50", "USD", 1250),
        ("0.1", "EUR", 10),
        ("1200", "JPY", 1200),
        ("1200.00", "JPY", 1200),
        ("1.234", "KWD", 1234),
        ("19.999", "USD", 2000),
        ("0.005", "USD", 0),  # half to even
        ("0.015", "USD", 2),
        ("-5.00", "BRL", -500),
        (" 7 ", "USD", 700),
        (3, "USD", 300),
    ],
)
def test_to_minor(amount: Any, currency: str, minor: int) -> None:
    assert to_minor(amount, currency, field="price") == minor


@pytest.mark.parametrize(
    "amount", ["12,50", "", "NaN", "Infinity", 12.5, True, None, "1e400", "1_000", "9" * 40]
)
def test_to_minor_refuses(amount: Any) -> None:
    with pytest.raises(InvalidInput) as caught:
        to_minor(amount, "USD", field="line_items/0/price")
    assert caught.value.field == "line_items/0/price"


@given(st.decimals(min_value=-(10**12), max_value=10**12, places=2))
def test_to_minor_is_exact_for_two_decimals(value: Decimal) -> None:
    minor = to_minor(str(value), "USD", field="x")
    assert Decimal(minor) / 100 == value
    assert from_minor(minor, "USD") == float(value)


def test_currency_and_keys() -> None:
    assert check_currency(" usd ") == "USD"
    with pytest.raises(InvalidInput):
        check_currency("US")
    assert event_key("order", 1001, "placed") == "order:1001:placed"
    long = event_key("order", "9" * 64, "line", "8" * 64)
    assert long.startswith("sha256:") and len(long) <= 128
    assert long == event_key("order", "9" * 64, "line", "8" * 64)


def test_signature() -> None:
    # base64(HMAC-SHA256("secret", body)), checked against a value computed independently
    # with `printf '{"id":1}' | openssl dgst -sha256 -hmac secret -binary | base64`.
    assert sign("secret", b'{"id":1}') == "A971iWIMgT8Zj9A9eWfikrFj7wQ16/Qwcc4OlRl2PLc="
    assert verify_signature("secret", b'{"id":1}', " A971iWIMgT8Zj9A9eWfikrFj7wQ16/Qwcc4OlRl2PLc=")
    assert not verify_signature("secret", b'{"id":2}', sign("secret", b'{"id":1}'))
    assert not verify_signature("secret", b"", None)


def _fixtures() -> list[tuple[str, str, dict[str, Any]]]:
    found = []
    for path in sorted((FIXTURES / "shopify").glob("*.json")):
        topic = path.stem.replace("_", "/", 1)
        if path.stem == "customers_email_marketing_consent_update":
            topic = "customers/email_marketing_consent_update"
        if path.stem.startswith("customers_data"):
            topic = "customers/data_request"
        found.append(("shopify", topic, json.loads(path.read_text())))
    for path in sorted((FIXTURES / "woocommerce").glob("*.json")):
        found.append(("woocommerce", path.stem.replace("_", "."), json.loads(path.read_text())))
    return found


@pytest.mark.parametrize(("kind", "topic", "payload"), _fixtures())
def test_every_fixture_maps(kind: str, topic: str, payload: dict[str, Any]) -> None:
    mapper = shopify.map_topic if kind == "shopify" else woocommerce.map_topic
    assert topic in (shopify.TOPICS if kind == "shopify" else woocommerce.TOPICS)
    assert mapper(topic, payload, {"x-shopify-shop-domain": "jsmith.myshopify.com"}) is not None


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)


def _mutate(payload: Any, data: st.DataObject) -> Any:
    """The payload with one value somewhere replaced by an arbitrary JSON value."""
    if isinstance(payload, dict) and payload:
        key = data.draw(st.sampled_from(sorted(payload)))
        if data.draw(st.booleans()):
            return {**payload, key: data.draw(json_values)}
        return {**payload, key: _mutate(payload[key], data)}
    if isinstance(payload, list) and payload:
        index = data.draw(st.integers(0, len(payload) - 1))
        copy = list(payload)
        copy[index] = _mutate(payload[index], data)
        return copy
    return data.draw(json_values)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mappers_only_raise_invalid_input(data: st.DataObject) -> None:
    kind, topic, payload = data.draw(st.sampled_from(_fixtures()))
    mutated = _mutate(payload, data)
    if not isinstance(mutated, dict):
        return
    mapper = shopify.map_topic if kind == "shopify" else woocommerce.map_topic
    try:
        mapper(topic, mutated, {})
    except InvalidInput as exc:
        assert exc.field, "a mapping error names its field"
