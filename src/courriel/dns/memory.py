"""An in-memory :class:`~courriel.dns.resolver.Resolver` for unit tests, and the zone syntax.

A zone is a mapping ``(name, rdtype) -> [rdata text, ...]``, the same for
:class:`MemoryResolver` and for the loopback server of ``courriel.testing.dns``:

- names in any case, U-labels or A-labels, with or without the final dot;
- rdata in zone-file syntax (``"10 mx1.example."``, ``"192.0.2.1"``); relative names
  are taken as absolute;
- a TXT value that does not start with ``"`` is one literal string (split into
  255-octet character-strings when longer, RFC 1035 §3.3.14), so ``"v=spf1 -all"``
  needs no quoting.

A name present under any type exists; a name present under none is NXDOMAIN. CNAME
records are followed (at most 8 links) for the other types, as a recursive server does.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.CNAME

from courriel.dns.resolver import MxRecord, rdata_values, to_query_name
from courriel.errors import DnsError

__all__ = ["MemoryResolver", "Zone", "normalize_zone", "parse_rdata"]

Zone = Mapping[tuple[str, str], list[str]]

_MAX_CNAME_LINKS = 8


def parse_rdata(rdtype: str, text: str) -> dns.rdata.Rdata:
    """Parse one rdata text of the zone syntax described in the module docstring.

    Raises:
        DnsError: (permanent) when the text is not valid rdata for ``rdtype``.
    """
    kind = rdtype.upper()
    if kind == "TXT" and not text.startswith('"'):
        raw = text.encode("utf-8")
        # RFC 1035 §3.3.14: a TXT record is one or more character-strings of <= 255 octets.
        chunks = [raw[i : i + 255] for i in range(0, len(raw), 255)] or [b""]
        return dns.rdata.from_wire(
            dns.rdataclass.IN,
            dns.rdatatype.TXT,
            b"".join(bytes([len(c)]) + c for c in chunks),
            0,
            sum(len(c) + 1 for c in chunks),
        )
    try:
        return dns.rdata.from_text(
            dns.rdataclass.IN, kind, text, origin=dns.name.root, relativize=False
        )
    except (dns.exception.DNSException, ValueError) as exc:
        raise DnsError(f"bad {kind} rdata {text!r}: {exc}", temporary=False) from exc


def normalize_zone(zone: Zone) -> dict[tuple[str, str], list[str]]:
    """Return ``zone`` with names as lower-case A-labels without the final dot and types upper."""
    normalized: dict[tuple[str, str], list[str]] = {}
    for (name, rdtype), values in zone.items():
        normalized.setdefault((to_query_name(name), rdtype.upper()), []).extend(values)
    return normalized


class MemoryResolver:
    """A dict-driven :class:`~courriel.dns.resolver.Resolver`.

    Args:
        records: the zone (see the module docstring).
        failures: ``(name, rdtype) -> DnsError`` raised when that query is asked,
            to simulate SERVFAIL (``temporary=True``) and the like.

    Attributes:
        queries: every ``(name, rdtype)`` asked, in order, as A-labels.
    """

    def __init__(
        self,
        records: Zone,
        failures: Mapping[tuple[str, str], DnsError] = MappingProxyType({}),
    ) -> None:
        self._records = normalize_zone(records)
        self._failures = {(to_query_name(n), t.upper()): e for (n, t), e in failures.items()}
        self._names = {name for name, _type in self._records}
        self.queries: list[tuple[str, str]] = []

    async def mx(self, domain: str) -> list[MxRecord]:
        """See :meth:`courriel.dns.resolver.Resolver.mx`."""
        return [v for v in self._lookup(domain, "MX") if isinstance(v, MxRecord)]

    async def addresses(self, host: str) -> list[str]:
        """See :meth:`courriel.dns.resolver.Resolver.addresses`.

        Same rule as :class:`~courriel.dns.resolver.DnsResolver`: NXDOMAIN is raised,
        a temporary failure of one type is raised only when the other found nothing.
        """
        found: list[str] = []
        failure: DnsError | None = None
        for rdtype in ("A", "AAAA"):
            try:
                found.extend(v for v in self._lookup(host, rdtype) if isinstance(v, str))
            except DnsError as exc:
                if not exc.temporary:
                    raise
                failure = exc
        if failure is not None and not found:
            raise failure
        return found

    async def txt(self, name: str) -> list[str]:
        """See :meth:`courriel.dns.resolver.Resolver.txt`."""
        return [v for v in self._lookup(name, "TXT") if isinstance(v, str)]

    def _lookup(self, name: str, rdtype: str) -> list[str] | list[MxRecord]:
        qname = to_query_name(name)
        self.queries.append((qname, rdtype))
        for _link in range(_MAX_CNAME_LINKS):
            failure = self._failures.get((qname, rdtype))
            if failure is not None:
                raise failure
            if qname not in self._names:
                raise DnsError(f"{qname} does not exist (NXDOMAIN)", temporary=False)
            values = self._records.get((qname, rdtype))
            if values is not None:
                return rdata_values(rdtype, [parse_rdata(rdtype, v) for v in values])
            cname = self._records.get((qname, "CNAME"))
            if not cname:
                return []
            target = parse_rdata("CNAME", cname[0])
            assert isinstance(target, dns.rdtypes.ANY.CNAME.CNAME)
            qname = to_query_name(target.target.to_text())
        raise DnsError(f"CNAME chain too long at {qname}", temporary=True)
