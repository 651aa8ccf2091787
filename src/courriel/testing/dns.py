"""A DNS server on loopback for tests, over UDP and TCP, with dnspython message handling.

Usage::

    async with DnsServer({("example.test", "MX"): ["10 mx1.example.test."],
                          ("mx1.example.test", "A"): ["127.0.0.2"]}) as port:
        resolver = DnsResolver(nameservers=[f"127.0.0.1:{port}"])

The zone syntax is ``courriel.dns.memory``'s (the same mapping drives a
:class:`~courriel.dns.memory.MemoryResolver`). Behaviour:

- a known name and type: the records, authoritative (AA), TTL 300;
- a CNAME is followed inside the zone, the answer holding the chain (RFC 1035 §3.6.2);
- a known name with no record of the asked type: NODATA (NOERROR, empty answer);
- an unknown name: NXDOMAIN (RFC 1035 §4.1.1 RCODE 3);
- a name in ``servfail``: SERVFAIL (RCODE 2); a name in ``silent``: no reply at all;
- over UDP an answer larger than 512 octets (or the EDNS payload size the query
  offers) is truncated with TC set (RFC 1035 §4.2.1), so the client retries over
  TCP; over TCP every message has a two-octet length prefix (RFC 1035 §4.2.2).

Invariants: the server binds only the given loopback host, and UDP and TCP share
one port. ``zone``, ``servfail`` and ``silent`` are read at each query, so a test
may change them while the server runs. Every query is recorded in ``queries``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
from collections.abc import Collection
from dataclasses import dataclass
from types import TracebackType
from typing import cast

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.CNAME
import dns.rrset

from courriel.dns.memory import Zone, normalize_zone, parse_rdata
from courriel.dns.resolver import to_query_name
from courriel.errors import DnsError

__all__ = ["DnsServer", "ReceivedQuery"]

_TTL = 300
_MAX_CNAME_LINKS = 8
_UDP_MIN_PAYLOAD = 512  # RFC 1035 §4.2.1: UDP messages are at most 512 octets without EDNS
_BIND_TRIES = 20


@dataclass(frozen=True, slots=True, kw_only=True)
class ReceivedQuery:
    """One question the server was asked."""

    name: str  # lower-case A-labels, no final dot
    rdtype: str  # "MX", "A", ...
    transport: str  # "udp" or "tcp"


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: DnsServer) -> None:
        self._server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        reply = self._server.answer(data, transport="udp")
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)


class DnsServer:
    """A small authoritative-and-recursive-looking DNS server for tests.

    Args:
        zone: ``(name, rdtype) -> [rdata text, ...]`` (see ``courriel.dns.memory``).
        host: the loopback address to bind.
        port: the port for UDP and TCP; 0 picks a free one.
        servfail: names answered with SERVFAIL.
        silent: names never answered (to test timeouts).
    """

    def __init__(
        self,
        zone: Zone,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        servfail: Collection[str] = (),
        silent: Collection[str] = (),
    ) -> None:
        # Parse every record now, so a typo in a test's zone fails at once.
        for (_name, rdtype), values in normalize_zone(zone).items():
            for value in values:
                parse_rdata(rdtype, value)
        self.zone = zone
        self.host = host
        self.port = port
        self.servfail: set[str] = set(servfail)
        self.silent: set[str] = set(silent)
        self.queries: list[ReceivedQuery] = []
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> int:
        """Bind UDP and TCP on one port and start answering; return the port."""
        loop = asyncio.get_running_loop()
        for _try in range(_BIND_TRIES):
            udp, _protocol = await loop.create_datagram_endpoint(
                lambda: _UdpProtocol(self), local_addr=(self.host, self.port)
            )
            port = int(udp.get_extra_info("sockname")[1])
            try:
                self._tcp = await asyncio.start_server(self._serve_tcp, self.host, port)
            except OSError as exc:
                udp.close()
                # The free UDP port may be taken for TCP: pick another one.
                if exc.errno == errno.EADDRINUSE and self.port == 0:
                    continue
                raise
            self._udp = udp
            self.port = port
            return port
        raise OSError(errno.EADDRINUSE, "no port free for both UDP and TCP")

    async def stop(self) -> None:
        """Stop answering and close every socket; idempotent."""
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        if self._tcp is not None:
            self._tcp.close()
            for writer in list(self._writers):
                writer.close()
            await self._tcp.wait_closed()
            self._tcp = None

    async def __aenter__(self) -> int:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                # RFC 1035 §4.2.2: each TCP message is prefixed by its two-octet length.
                length = int.from_bytes(await reader.readexactly(2), "big")
                reply = self.answer(await reader.readexactly(length), transport="tcp")
                if reply is not None:
                    writer.write(len(reply).to_bytes(2, "big") + reply)
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    def answer(self, wire: bytes, *, transport: str) -> bytes | None:
        """Return the reply to the query ``wire``, or None when none is to be sent."""
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return None  # not a DNS message: nothing sensible to answer
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA | dns.flags.RA
        if len(query.question) != 1:
            response.set_rcode(dns.rcode.FORMERR)
            return response.to_wire()
        question = query.question[0]
        rdtype = dns.rdatatype.to_text(question.rdtype)
        try:
            name = to_query_name(question.name.to_text())
        except DnsError:
            name = "."
        self.queries.append(ReceivedQuery(name=name, rdtype=rdtype, transport=transport))
        if name in self._names(self.silent):
            return None
        if name in self._names(self.servfail):
            response.set_rcode(dns.rcode.SERVFAIL)
        else:
            try:
                self._fill(response, name, rdtype)
            except (DnsError, dns.exception.DNSException):
                # A zone the test changed into something unparsable: say so as SERVFAIL.
                response.answer.clear()
                response.set_rcode(dns.rcode.SERVFAIL)
        max_size = 65535
        if transport == "udp":
            max_size = max(_UDP_MIN_PAYLOAD, query.payload) if query.edns >= 0 else 512
        return response.to_wire(max_size=max_size, prefer_truncation=True)

    def _fill(self, response: dns.message.Message, name: str, rdtype: str) -> None:
        zone = normalize_zone(self.zone)
        names = {n for n, _type in zone}
        current = name
        for _link in range(_MAX_CNAME_LINKS):
            if current not in names:
                response.set_rcode(dns.rcode.NXDOMAIN)
                return
            values = zone.get((current, rdtype))
            if values is not None:
                response.answer.append(_rrset(current, rdtype, values))
                return
            cname = zone.get((current, "CNAME"))
            if not cname:
                return  # NODATA
            response.answer.append(_rrset(current, "CNAME", cname[:1]))
            target = parse_rdata("CNAME", cname[0])
            assert isinstance(target, dns.rdtypes.ANY.CNAME.CNAME)
            current = to_query_name(target.target.to_text())
        response.set_rcode(dns.rcode.SERVFAIL)  # a CNAME loop

    @staticmethod
    def _names(entries: Collection[str]) -> set[str]:
        return {to_query_name(entry) for entry in entries}


def _rrset(name: str, rdtype: str, values: list[str]) -> dns.rrset.RRset:
    return dns.rrset.from_rdata_list(
        dns.name.from_text(name + "."), _TTL, [parse_rdata(rdtype, v) for v in values]
    )
