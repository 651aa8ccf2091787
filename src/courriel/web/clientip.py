"""The client address of an HTTP request, seen through the reverse proxies we trust.

Owns :class:`ProxyTrust` (the ``http.trusted_proxies`` networks) and :func:`client_ip`, the
one place the web edge learns who is calling: the tracker's rate limit is keyed by it and
consent proof (``/u/`` pages) records it.

Invariants:
- ``X-Forwarded-For`` is read only when the connecting peer is a trusted proxy; from anyone
  else it is ignored, so a visitor cannot choose the address recorded for them.
- The header is walked from the right: each trusted proxy appended the address it saw,
  so the answer is the rightmost hop that is not itself trusted. A hop that is not an IP
  address stops the walk at the last address vouched for (a trusted one).
- With no trusted proxy (the default) the answer is always the connecting peer.
- ``Forwarded`` (RFC 7239) is not read; proxies are configured to send X-Forwarded-For.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

from litestar import Request

from courriel.config import parse_network

__all__ = ["ProxyTrust", "client_ip", "resolve_client"]

Address: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address

_HEADER = b"x-forwarded-for"


@dataclass(frozen=True, slots=True, kw_only=True)
class ProxyTrust:
    """The reverse proxies whose ``X-Forwarded-For`` is believed (empty: none).

    Two fields, one per IP version: Litestar checks ``WebServices`` with msgspec on every
    request, and msgspec refuses a union of two custom types (``IPv4Network | IPv6Network``).
    """

    v4: tuple[ipaddress.IPv4Network, ...] = ()
    v6: tuple[ipaddress.IPv6Network, ...] = ()

    @classmethod
    def parse(cls, values: Iterable[str]) -> ProxyTrust:
        """Build from ``http.trusted_proxies`` items.

        Raises:
            InvalidInput: an item is not an IP address or a network (see
                :func:`courriel.config.parse_network`).
        """
        networks = [parse_network(v) for v in values]
        return cls(
            v4=tuple(n for n in networks if isinstance(n, ipaddress.IPv4Network)),
            v6=tuple(n for n in networks if isinstance(n, ipaddress.IPv6Network)),
        )

    @property
    def empty(self) -> bool:
        """True when no proxy is trusted."""
        return not (self.v4 or self.v6)

    def trusts(self, address: Address) -> bool:
        """Tell whether ``address`` belongs to a trusted proxy."""
        if isinstance(address, ipaddress.IPv4Address):
            return any(address in network for network in self.v4)
        return any(address in network for network in self.v6)


def _address(text: str) -> Address | None:
    """An IP address from a peer or hop, with an optional port; None when it is not one."""
    text = text.strip()
    if text.startswith("["):
        # [2001:db8::1]:443
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        # 192.0.2.1:443 (an IPv6 address has at least two colons).
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    # A dual-stack socket shows IPv4 peers as ::ffff:a.b.c.d.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def resolve_client(peer: str | None, forwarded_for: Sequence[str], trust: ProxyTrust) -> str | None:
    """The client address of a request (sans-I/O core of :func:`client_ip`).

    Args:
        peer: the connecting peer's address (None when the server does not know it).
        forwarded_for: every ``X-Forwarded-For`` header value, in the order received.
        trust: the trusted proxies.

    Returns:
        The rightmost untrusted hop when the peer is trusted, else the peer itself.
    """
    if peer is None or trust.empty:
        return peer
    current = _address(peer)
    if current is None or not trust.trusts(current):
        return peer
    hops = [hop for value in forwarded_for for hop in value.split(",")]
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:
            break
        current = address
        if not trust.trusts(address):
            break
    # Every hop trusted: the leftmost one is the client (itself inside a trusted network).
    return str(current)


def client_ip(request: Request[Any, Any, Any], trust: ProxyTrust) -> str | None:
    """The address of the person (or program) behind ``request``.

    Args:
        request: the request.
        trust: ``WebServices.trusted_proxies``.

    Returns:
        The address, or None when the server does not know the peer.
    """
    peer = request.client.host if request.client else None
    headers = request.scope.get("headers", ())
    values = [value.decode("latin-1") for name, value in headers if name.lower() == _HEADER]
    return resolve_client(peer, values, trust)
