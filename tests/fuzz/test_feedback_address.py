"""The router's VERP check answers True, False or None for any address, never raises."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from courriel.marketing.campaigns.feedback import feedback_address_check
from courriel.marketing.campaigns.tokens import Ref, verp_address

KEY = b"f" * 32
CHECK = feedback_address_check(KEY)


@given(st.text(max_size=120))
def test_any_text(address: str) -> None:
    assert CHECK(address) in (True, False, None)


@given(st.sampled_from("ct"), st.integers(1, 10**18), st.text(max_size=8))
def test_verp_shapes(kind: str, ident: int, noise: str) -> None:
    good = verp_address(KEY, Ref(kind, ident), "shop.test")  # type: ignore[arg-type]
    assert CHECK(good) is True
    assert CHECK(good.upper()) is True
    tampered = good.replace("@", noise + "x@", 1)
    assert CHECK(tampered) is False
    assert CHECK("alice" + noise + "@shop.test") is None
