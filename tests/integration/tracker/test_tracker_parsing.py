"""The tracker's pure parts: origins, body parsing (fuzzed: only InvalidInput may leave),
and the token bucket with an injected clock."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from courriel.errors import InvalidInput
from courriel.integrations.tracker import (
    MAX_BODY,
    RateLimiter,
    TrackerSite,
    normalize_origin,
    origin_allowed,
    parse_identify,
    parse_track,
)

BROWSER = "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(
    ("given_origin", "expected"),
    [
        ("https://Shop.Example", "https://shop.example"),
        ("https://shop.example:443/", "https://shop.example"),
        ("http://shop.example:80", "http://shop.example"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("https://bücher.example", "https://xn--bcher-kva.example"),
        ("http://[::1]:3000", "http://[::1]:3000"),
    ],
)
def test_normalize_origin(given_origin: str, expected: str) -> None:
    assert normalize_origin(given_origin) == expected


@pytest.mark.parametrize(
    "bad",
    [
        "shop.example",
        "ftp://shop.example",
        "https://shop.example/path",
        "https://shop.example?q=1",
        "https://user@shop.example",
        "https://shop.example:99999",
        "https://",
        "null",
    ],
)
def test_normalize_origin_refuses(bad: str) -> None:
    with pytest.raises(InvalidInput) as info:
        normalize_origin(bad)
    assert info.value.field == "origin"


def test_origin_allowed() -> None:
    site = TrackerSite(
        id=1,
        name="s",
        public_key="k",
        origins=("https://shop.example",),
        created_at=None,  # type: ignore[arg-type]
    )
    assert origin_allowed(site, "https://shop.example")
    assert origin_allowed(site, "https://SHOP.example:443")
    assert not origin_allowed(site, "https://shop.example.evil")
    assert not origin_allowed(site, "null")
    assert not origin_allowed(site, None)
    anywhere = TrackerSite(id=2, name="t", public_key="j", origins=(), created_at=None)  # type: ignore[arg-type]
    assert origin_allowed(anywhere, None) and origin_allowed(anywhere, "http://x.example")


def test_parse_track_reads_value_and_klaviyo_dollar_value() -> None:
    body = {"anonymous_id": BROWSER, "event": " Viewed Product ", "properties": {"$value": 9}}
    call = parse_track(json.dumps(body).encode())
    assert call.name == "Viewed Product" and call.value == 9.0 and call.event_id is None
    call = parse_track(json.dumps({**body, "value": 2.5, "event_id": "abc"}).encode())
    assert call.value == 2.5 and call.event_id == "abc"
    with pytest.raises(InvalidInput):
        parse_track(json.dumps({**body, "value": True}).encode())
    with pytest.raises(InvalidInput):
        parse_track(b"{" + b" " * MAX_BODY + b"}")


def test_parse_identify_splits_columns_and_attributes() -> None:
    profile = {
        "email": "ana@example.com",
        "first_name": "Ana",
        "country": "fr",
        "last_name": "",
        "city": None,
        "favourite": "tea",
    }
    call = parse_identify(json.dumps({"anonymous_id": BROWSER, "profile": profile}).encode())
    data = call.profile
    assert (data.email, data.first_name, data.country, data.last_name, data.city) == (
        "ana@example.com",
        "Ana",
        "fr",
        None,
        None,
    )
    assert data.attributes == {"favourite": "tea"} and data.source == "tracker"
    assert data.tags is None


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
KEYS = st.sampled_from(["anonymous_id", "event", "properties", "value", "event_id", "profile"])
BODIES = st.one_of(
    st.binary(max_size=200),
    st.dictionaries(KEYS, JSON | st.just(BROWSER), max_size=6).map(
        lambda d: json.dumps(d).encode()
    ),
)


@settings(max_examples=300, deadline=None)
@given(BODIES)
def test_parsers_raise_only_invalid_input(body: bytes) -> None:
    for parse in (parse_identify, parse_track):
        try:
            call = parse(body)
        except InvalidInput as exc:
            assert str(exc)
        else:
            assert len(call.anonymous_id) == 32


def test_token_bucket() -> None:
    now = [100.0]
    limiter = RateLimiter(per_minute=60, burst=3, clock=lambda: now[0], max_keys=2)
    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a") == pytest.approx(1.0)
    now[0] += 0.5
    assert limiter.take("a") == pytest.approx(0.5)
    now[0] += 0.5
    assert limiter.take("a") == 0.0
    # A clock that goes back refills nothing and breaks nothing.
    now[0] -= 50
    assert limiter.take("a") > 0
    # Only max_keys buckets are kept: the least recently used is forgotten (full again).
    limiter.take("b")
    limiter.take("c")
    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
