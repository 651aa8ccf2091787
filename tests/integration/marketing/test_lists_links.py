"""Signed link tokens (used by double opt-in): purpose-bound, expiring, tamper-evident."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from courriel.errors import InvalidInput
from courriel.marketing.links import LinkSigner

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def test_round_trip_and_url_safety() -> None:
    signer = LinkSigner(b"0" * 32, clock=Clock())
    token = signer.sign("list-confirm", {"l": 3, "c": 99, "name": "é/?&"})
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")
    assert signer.verify("list-confirm", token, max_age=DAY) == {"l": 3, "c": 99, "name": "é/?&"}


def test_purpose_key_and_expiry_are_checked() -> None:
    clock = Clock()
    signer = LinkSigner(b"0" * 32, clock=clock)
    token = signer.sign("list-confirm", {"c": 1})
    with pytest.raises(InvalidInput):
        signer.verify("unsubscribe", token, max_age=DAY)
    with pytest.raises(InvalidInput):
        LinkSigner(b"1" * 32, clock=clock).verify("list-confirm", token, max_age=DAY)
    clock.now = T0 + DAY
    assert signer.verify("list-confirm", token, max_age=DAY) == {"c": 1}
    clock.now = T0 + DAY + timedelta(seconds=1)
    with pytest.raises(InvalidInput, match="expired") as caught:
        signer.verify("list-confirm", token, max_age=DAY)
    assert caught.value.field == "token"


def test_short_key_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        LinkSigner(b"short")


@given(st.text(max_size=200))
def test_garbage_is_refused_with_invalid_input_only(token: str) -> None:
    signer = LinkSigner(b"0" * 32, clock=Clock())
    with pytest.raises(InvalidInput):
        signer.verify("list-confirm", token, max_age=DAY)


@given(st.integers(min_value=0), st.integers(min_value=0, max_value=255))
def test_any_single_byte_change_is_refused(position: int, value: int) -> None:
    signer = LinkSigner(b"0" * 32, clock=Clock())
    token = signer.sign("list-confirm", {"l": 1, "c": 2})
    index = position % len(token)
    changed = token[:index] + chr(value) + token[index + 1 :]
    if changed == token:
        return
    with pytest.raises(InvalidInput):
        signer.verify("list-confirm", changed, max_age=DAY)
