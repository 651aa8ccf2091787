"""Where to deliver mail for a domain: MX routing (RFC 5321 §5.1, RFC 7505) and the smarthost.

:func:`resolve_route` turns a recipient domain into a :class:`Route`, the ordered
list of hosts (each with its addresses) the delivery worker tries in turn;
:func:`relay_route` does the same for ``delivery.relay_host``. DNS is asked only
through the :class:`~courriel.dns.resolver.Resolver` port, so tests inject a
:class:`~courriel.dns.memory.MemoryResolver` and a seeded ``random.Random``.

Rules and choices:
- MX records are tried by ascending preference; records of equal preference are
  shuffled (RFC 5321 §5.1), with the injected ``rng``. A host named twice is kept once,
  at its best preference.
- No MX records (NODATA): the domain itself is the only host, preference 0 (the
  "implicit MX" of RFC 5321 §5.1). No address either: permanent failure.
- A null MX (RFC 7505 §3: one MX whose exchange is ``.``): permanent failure, no
  address is looked up. A null MX mixed with real MX records violates RFC 7505 §3;
  the null record is then ignored and the others used.
- If one of ``local_hosts`` is an MX host, it and every host of equal or worse
  preference are dropped (RFC 5321 §5.1), so mail never loops back to us; nothing
  left means a permanent failure.
- Each host's A/AAAA are looked up concurrently. A host that does not exist or has
  no address is skipped; a host whose lookup fails temporarily is skipped too, as
  long as another host has addresses. When no host has an address the failure is
  temporary if any lookup failed temporarily, else permanent.
- An MX exchange that is an IP address (a misconfiguration RFC 5321 §5.1 forbids,
  but which exists) is used as its own address, without a lookup. CNAMEs are
  followed by the resolver.
- NXDOMAIN for the domain is permanent; SERVFAIL and timeouts are temporary. Domains
  may be given in U-labels (RFC 5890 IDNA) and are asked as A-labels.
- The smarthost is operator configuration: any DNS failure for it is temporary,
  so a typo in ``delivery.relay_host`` delays mail instead of bouncing it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
from collections.abc import Collection, MutableSequence, Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import Any, Protocol

from courriel.dns.resolver import MxRecord, Resolver, to_query_name
from courriel.errors import DnsError

__all__ = ["NULL_MX_MESSAGE", "MxTarget", "Route", "Shuffler", "relay_route", "resolve_route"]

NULL_MX_MESSAGE = "domain accepts no mail (null MX, RFC 7505)"


@dataclass(frozen=True, slots=True, kw_only=True)
class MxTarget:
    """One host to try, with the addresses to connect to (in order)."""

    host: str  # A-label host name without final dot, or an IP address literal
    preference: int  # MX preference; 0 for the implicit MX and for the smarthost
    addresses: tuple[str, ...]  # IPv4 then IPv6, never empty


@dataclass(frozen=True, slots=True, kw_only=True)
class Route:
    """The hosts to try for one destination, best first."""

    domain: str  # the destination as A-labels (the recipient domain, or the relay host)
    hosts: tuple[MxTarget, ...]  # never empty
    port: int = 25  # RFC 5321 §4.5.4.2: SMTP servers listen on 25; a smarthost may differ


class Shuffler(Protocol):
    """What :func:`resolve_route` needs of its random source (``random`` or ``random.Random``)."""

    def shuffle(self, x: MutableSequence[Any], /) -> None:
        """Shuffle ``x`` in place."""
        ...


async def resolve_route(
    resolver: Resolver,
    domain: str,
    *,
    rng: Shuffler = random,
    local_hosts: Collection[str] = (),
) -> Route:
    """Find the hosts that receive mail for ``domain`` (RFC 5321 §5.1).

    Args:
        resolver: the DNS port.
        domain: the recipient domain, U-labels or A-labels.
        rng: shuffles MX hosts of equal preference; inject a seeded one in tests.
        local_hosts: this server's own host names, to refuse routing mail to itself.

    Returns:
        The route, hosts ordered as they are to be tried.

    Raises:
        DnsError: ``temporary=False`` for NXDOMAIN, a null MX, a domain without any
            usable host, or a loop back to ``local_hosts``; ``temporary=True`` when a
            lookup failed in a way that may heal (SERVFAIL, timeout).
    """
    name = to_query_name(domain)
    records = await resolver.mx(name)
    if not records:
        return await _implicit_route(resolver, name)
    usable = [record for record in records if record.host]
    if not usable:
        raise DnsError(NULL_MX_MESSAGE, temporary=False)
    ordered = _drop_local(_order(usable, rng), {to_query_name(h) for h in local_hosts})
    if not ordered:
        raise DnsError(
            f"mail for {name} loops back to this host (it is the best MX, RFC 5321 §5.1)",
            temporary=False,
        )
    return Route(domain=name, hosts=await _with_addresses(resolver, name, ordered))


async def relay_route(resolver: Resolver, host: str, port: int = 25) -> Route:
    """The route to the smarthost ``delivery.relay_host``.

    Args:
        resolver: the DNS port.
        host: a host name, an IP address, or an address literal in brackets (``[192.0.2.1]``).
        port: ``delivery.relay_port``.

    Raises:
        DnsError: always ``temporary=True``: the relay is configuration, mail waits for
            it to be fixed rather than bouncing.
    """
    literal = _ip_literal(host.strip().removeprefix("[").removesuffix("]"))
    if literal is not None:
        target = MxTarget(host=literal, preference=0, addresses=(literal,))
        return Route(domain=literal, hosts=(target,), port=port)
    try:
        name = to_query_name(host)
        addresses = await resolver.addresses(name)
    except DnsError as exc:
        raise DnsError(f"relay host {host!r}: {exc}", temporary=True) from exc
    if not addresses:
        raise DnsError(f"relay host {host!r} has no address", temporary=True)
    target = MxTarget(host=name, preference=0, addresses=tuple(addresses))
    return Route(domain=name, hosts=(target,), port=port)


async def _implicit_route(resolver: Resolver, name: str) -> Route:
    # RFC 5321 §5.1: without MX records the domain is treated as an implicit MX,
    # preference 0, pointing to the domain itself.
    addresses = await resolver.addresses(name)
    if not addresses:
        raise DnsError(f"{name} has no MX and no address records", temporary=False)
    target = MxTarget(host=name, preference=0, addresses=tuple(addresses))
    return Route(domain=name, hosts=(target,))


def _order(records: Sequence[MxRecord], rng: Shuffler) -> list[MxRecord]:
    # RFC 5321 §5.1: lowest preference first; among equal preferences, random order.
    best: dict[str, MxRecord] = {}
    for record in sorted(records, key=lambda r: r.preference):
        best.setdefault(record.host, record)
    ordered: list[MxRecord] = []
    for _preference, group in groupby(best.values(), key=lambda r: r.preference):
        same = list(group)
        rng.shuffle(same)
        ordered.extend(same)
    return ordered


def _drop_local(records: list[MxRecord], local: set[str]) -> list[MxRecord]:
    # RFC 5321 §5.1: if this host is an MX for the domain, discard it and every MX of
    # the same or a higher preference value.
    own = [r.preference for r in records if r.host in local]
    if not own:
        return records
    return [r for r in records if r.preference < min(own)]


async def _with_addresses(
    resolver: Resolver, name: str, records: list[MxRecord]
) -> tuple[MxTarget, ...]:
    results = await asyncio.gather(
        *(_host_addresses(resolver, r.host) for r in records), return_exceptions=True
    )
    targets: list[MxTarget] = []
    temporary: list[str] = []
    for record, result in zip(records, results, strict=True):
        if isinstance(result, DnsError):
            if result.temporary:
                temporary.append(str(result))
            continue
        if isinstance(result, BaseException):
            raise result
        if result:
            targets.append(
                MxTarget(host=record.host, preference=record.preference, addresses=result)
            )
    if targets:
        return tuple(targets)
    if temporary:
        raise DnsError(
            f"no MX host of {name} could be resolved now: {'; '.join(temporary)}",
            temporary=True,
        )
    hosts = ", ".join(r.host for r in records)
    raise DnsError(f"no MX host of {name} has an address ({hosts})", temporary=False)


async def _host_addresses(resolver: Resolver, host: str) -> tuple[str, ...]:
    literal = _ip_literal(host)
    if literal is not None:
        return (literal,)
    return tuple(await resolver.addresses(host))


def _ip_literal(text: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None
