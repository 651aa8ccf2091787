"""Fuzz: prefetch detection takes any User-Agent and address text and only answers a bool."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from courriel.marketing.campaigns.tracking import is_prefetch

_IPS = st.one_of(
    st.none(),
    st.text(max_size=64),
    st.ip_addresses().map(str),
    st.integers(0, 2**24 - 1).map(lambda n: f"17.{n >> 16}.{(n >> 8) & 255}.{n & 255}"),
)
_AGENTS = st.one_of(st.none(), st.text(max_size=200), st.just("Mozilla/5.0"))


@given(_AGENTS, _IPS)
def test_is_prefetch_never_raises(agent: str | None, ip: str | None) -> None:
    result = is_prefetch(agent, ip)
    assert isinstance(result, bool)
    if result:
        assert (agent or "").strip() == "Mozilla/5.0" and ip is not None
        assert ip.startswith("17.") or ip.startswith("::ffff:17.")
