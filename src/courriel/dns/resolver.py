"""The DNS port of courriel and its dnspython implementation.

Everything that asks DNS (MX routing, SPF, DKIM, DMARC, ``domain dns --check``) goes
through the :class:`Resolver` protocol, so tests inject :class:`MemoryResolver`
(``courriel.dns.memory``) or point :class:`DnsResolver` at the loopback server of
``courriel.testing.dns``.

Invariants:
- Names are asked as absolute A-labels (RFC 5890 IDNA: U-labels are accepted and
  converted with the stdlib IDNA codec, as ``courriel.mail.address`` does); search
  domains are never applied.
- Answers are plain values: MX as :class:`MxRecord` with a lower-case host without
  the final dot (``""`` for the null MX ``.``), addresses as strings, TXT records as
  the concatenation of their character-strings.
- Failures are :class:`~courriel.errors.DnsError` only: NXDOMAIN is permanent
  (``temporary=False``); SERVFAIL, timeouts and unreachable servers are temporary.
  A name that exists without records of the asked type (NODATA) is an empty list.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

import dns.asyncresolver
import dns.exception
import dns.name
import dns.nameserver
import dns.rdata
import dns.rdtypes.ANY.MX
import dns.rdtypes.ANY.TXT
import dns.resolver

from courriel.errors import DnsError, InvalidInput

__all__ = [
    "DnsResolver",
    "MxRecord",
    "Resolver",
    "parse_nameserver",
    "rdata_values",
    "to_query_name",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class MxRecord:
    """One MX record."""

    preference: int
    host: str  # lower-case A-labels, no final dot; "" is the null MX "." (RFC 7505)


class Resolver(Protocol):
    """The DNS port: the three lookups courriel needs."""

    async def mx(self, domain: str) -> list[MxRecord]:
        """MX records of ``domain``; ``[]`` when it has none (NODATA).

        Raises:
            DnsError: ``temporary=False`` on NXDOMAIN, ``temporary=True`` on
                SERVFAIL or timeout.
        """
        ...

    async def addresses(self, host: str) -> list[str]:
        """IPv4 then IPv6 addresses of ``host`` as strings; ``[]`` when none.

        Raises:
            DnsError: as for :meth:`mx`.
        """
        ...

    async def txt(self, name: str) -> list[str]:
        """TXT records of ``name``, each the concatenation of its character-strings.

        Raises:
            DnsError: as for :meth:`mx`.
        """
        ...


def to_query_name(name: str) -> str:
    """Return ``name`` as lower-case A-labels without the final dot.

    Args:
        name: a domain name in U-labels or A-labels, with or without the final dot.

    Raises:
        DnsError: (permanent) when the name cannot be a DNS name.
    """
    text = name.strip().rstrip(".").lower()
    if not text:
        raise DnsError(f"empty domain name {name!r}", temporary=False)
    labels = []
    for label in text.split("."):
        try:
            # RFC 5890 §2.3.2.1: U-labels become A-labels before they are asked.
            ascii_label = label if label.isascii() else label.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise DnsError(f"not a valid domain name: {name!r}", temporary=False) from exc
        # RFC 1035 §2.3.4: labels are 1 to 63 octets.
        if not 0 < len(ascii_label) <= 63:
            raise DnsError(f"not a valid domain name: {name!r}", temporary=False)
        labels.append(ascii_label)
    result = ".".join(labels)
    # RFC 1035 §2.3.4: a name is at most 255 octets on the wire (253 as text).
    if len(result) > 253:
        raise DnsError(f"domain name too long: {name!r}", temporary=False)
    return result


def parse_nameserver(text: str) -> tuple[str, int]:
    """Split a ``dns.nameservers`` entry into an address and a port.

    Accepted forms: ``ip``, ``ipv4:port``, ``[ipv6]:port`` and a bare IPv6 address.

    Raises:
        InvalidInput: when the entry is not one of those forms.
    """
    entry = text.strip()
    host, port = entry, 53
    if entry.startswith("["):
        inside, sep, rest = entry[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise InvalidInput(f"bad name server {text!r}: expected [ipv6]:port")
        host = inside
        port_text = rest[1:] if rest else "53"
    elif entry.count(":") == 1:
        host, _, port_text = entry.partition(":")
    else:
        port_text = "53"
    try:
        address = str(ipaddress.ip_address(host))
        port = int(port_text)
    except ValueError as exc:
        raise InvalidInput(f"bad name server {text!r}: expected ip or ip:port") from exc
    if not 0 < port < 65536:
        raise InvalidInput(f"bad name server {text!r}: port out of range")
    return address, port


def rdata_values(rdtype: str, rdatas: Sequence[dns.rdata.Rdata]) -> list[str] | list[MxRecord]:
    """Turn dnspython rdata of one type into courriel's plain values.

    MX becomes sorted :class:`MxRecord` values, TXT the joined strings, others text.
    """
    if rdtype == "MX":
        records = [_mx_record(r) for r in rdatas if isinstance(r, dns.rdtypes.ANY.MX.MX)]
        return sorted(records, key=lambda r: (r.preference, r.host))
    if rdtype == "TXT":
        # RFC 7208 §3.3 and RFC 6376 §3.6.2.2: the strings of one record are concatenated.
        return [
            b"".join(r.strings).decode("utf-8", errors="replace")
            for r in rdatas
            if isinstance(r, dns.rdtypes.ANY.TXT.TXT)
        ]
    return [r.to_text() for r in rdatas]


def _mx_record(rdata: dns.rdtypes.ANY.MX.MX) -> MxRecord:
    exchange = rdata.exchange
    host = "" if exchange == dns.name.root else exchange.to_text(omit_final_dot=True).lower()
    return MxRecord(preference=int(rdata.preference), host=host)


class DnsResolver:
    """:class:`Resolver` on dnspython's asyncio resolver.

    Args:
        nameservers: ``dns.nameservers`` entries (``ip`` or ``ip:port``); empty means
            the system configuration (``/etc/resolv.conf``).
        timeout: the time allowed for one lookup (``dns.timeout``). Each try gets half
            of it, so a lost UDP datagram is retried once within the allowance.
    """

    def __init__(
        self, *, nameservers: Sequence[str] = (), timeout: timedelta | float = 5.0
    ) -> None:
        seconds = timeout.total_seconds() if isinstance(timeout, timedelta) else float(timeout)
        if nameservers:
            resolver = dns.asyncresolver.Resolver(configure=False)
            resolver.nameservers = [
                dns.nameserver.Do53Nameserver(*parse_nameserver(entry)) for entry in nameservers
            ]
        else:
            resolver = dns.asyncresolver.Resolver(configure=True)
        resolver.search = []
        resolver.use_search_by_default = False
        resolver.lifetime = seconds
        resolver.timeout = seconds / 2
        self._resolver = resolver

    async def mx(self, domain: str) -> list[MxRecord]:
        """See :meth:`Resolver.mx`."""
        values = await self._query(domain, "MX")
        return [v for v in values if isinstance(v, MxRecord)]

    async def addresses(self, host: str) -> list[str]:
        """See :meth:`Resolver.addresses`.

        A and AAAA are asked together. NXDOMAIN on either is permanent. When one type
        fails temporarily the other type's addresses are returned if there are any;
        otherwise the temporary error is raised, since the missing type may hold some.
        """
        results = await asyncio.gather(
            self._query(host, "A"), self._query(host, "AAAA"), return_exceptions=True
        )
        found: list[str] = []
        failure: DnsError | None = None
        for result in results:
            if isinstance(result, DnsError):
                if not result.temporary:
                    raise result
                failure = result
            elif isinstance(result, BaseException):
                raise result
            else:
                found.extend(v for v in result if isinstance(v, str))
        if failure is not None and not found:
            raise failure
        return found

    async def txt(self, name: str) -> list[str]:
        """See :meth:`Resolver.txt`."""
        values = await self._query(name, "TXT")
        return [v for v in values if isinstance(v, str)]

    async def _query(self, name: str, rdtype: str) -> list[str] | list[MxRecord]:
        qname = to_query_name(name)
        try:
            answer = await self._resolver.resolve(qname + ".", rdtype, search=False)
        except dns.resolver.NXDOMAIN as exc:
            raise DnsError(f"{qname} does not exist (NXDOMAIN)", temporary=False) from exc
        except dns.resolver.NoAnswer:
            return []
        except dns.exception.Timeout as exc:
            raise DnsError(f"{rdtype} lookup of {qname} timed out", temporary=True) from exc
        except dns.resolver.NoNameservers as exc:
            raise DnsError(
                f"{rdtype} lookup of {qname} failed (SERVFAIL or no usable server)",
                temporary=True,
            ) from exc
        except (dns.exception.DNSException, OSError) as exc:
            raise DnsError(f"{rdtype} lookup of {qname} failed: {exc}", temporary=True) from exc
        return rdata_values(rdtype, list(answer))
