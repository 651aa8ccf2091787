"""Sending the claimed messages of one destination domain over a few reused connections.

Owns the per-destination half of the worker: trying the route's hosts in order, keeping
at most ``max_connections`` sessions open to the destination, reusing each for up to
``max_messages`` messages, and reporting one :class:`Result` per message (every
recipient of it at this domain gets a reply, real or synthesised).

Invariants:
- RFC 5321 §5.1: hosts are tried in the route's order (preference, random among equals),
  each of their addresses in turn, until one accepts a connection.
- One transaction per message carries all its recipients at this domain (RFC 5321
  §3.3: many RCPTs per transaction; 100 recipients at one domain go in one transaction).
- Every message handed to :meth:`DomainDispatch.run` is reported exactly once, even when
  no host can be reached (its recipients get the connection error, code 0 = temporary).
- A lane ends by parking its session in the worker's :class:`ConnectionCache` when the
  session is still good for more messages (the next round takes it back), and closes it
  (QUIT) otherwise, whatever happened; without a cache it always closes it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from courriel.delivery.claims import Claim
from courriel.delivery.conncache import ConnectionCache
from courriel.delivery.transport import (
    Connection,
    Connector,
    Outgoing,
    RemoteReply,
    TransportError,
)
from courriel.errors import BlobMissing

__all__ = ["DomainDispatch", "Result", "RouteHost"]

log = logging.getLogger(__name__)


class RouteHost(Protocol):
    """One host of a route (an MX target or the smarthost)."""

    @property
    def host(self) -> str:
        """The host name (for the attempt log and the client's TLS checks)."""
        ...

    @property
    def addresses(self) -> Sequence[str]:
        """Its IP addresses, in the order to try them."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Result:
    """The outcome of one message's transaction with one destination."""

    claims: tuple[Claim, ...]  # this message's claimed recipients at the destination
    replies: Mapping[int, RemoteReply]  # recipient id -> final reply
    mx_host: str  # "" when no host was reached
    tls: bool
    tls_verified: bool


Report = Callable[[Result], Awaitable[None]]
Load = Callable[[Claim], Awaitable[bytes]]


class DomainDispatch:
    """Delivers a list of messages (each a list of claims) to one destination."""

    def __init__(
        self,
        connector: Connector,
        hosts: Sequence[RouteHost],
        *,
        port: int,
        max_connections: int,
        max_messages: int,
        load: Load,
        report: Report,
        cache: ConnectionCache | None = None,
    ) -> None:
        self._connector = connector
        self._cache = cache
        self._hosts = list(hosts)
        self._port = port
        self._max_connections = max(1, max_connections)
        self._max_messages = max(1, max_messages)
        self._load = load
        self._report = report
        self._pending: deque[tuple[Claim, ...]] = deque()
        self._last_error = TransportError("no host to connect to", temporary=True)

    async def run(self, messages: Sequence[Sequence[Claim]]) -> None:
        """Send every message, then report the ones no lane could send."""
        self._pending = deque(tuple(m) for m in messages if m)
        lanes = min(self._max_connections, len(self._pending))
        await asyncio.gather(*(self._lane() for _ in range(lanes)))
        # Every lane gave up connecting: the rest share the last connection error.
        while self._pending:
            await self._report_error(self._pending.popleft(), self._last_error, "")

    async def _lane(self) -> None:
        conn: Connection | None = None
        where: tuple[str, str] = ("", "")  # the session's host and address
        sent = 0
        done = False
        try:
            while self._pending:
                message = self._pending.popleft()
                if conn is None:
                    try:
                        conn, where, sent = await self._connect()
                    except TransportError as exc:
                        self._last_error = exc
                        await self._report_error(message, exc, "")
                        return
                if not await self._send(conn, message):
                    await conn.close()
                    conn = None
                    continue
                sent += 1
                if sent >= self._max_messages:
                    await conn.close()
                    conn = None
            done = True
        finally:
            if conn is not None:
                if done and self._cache is not None:
                    self._cache.put(*where, self._port, conn, sent)
                else:
                    await conn.close()

    async def _connect(self) -> tuple[Connection, tuple[str, str], int]:
        """A parked session to one of the route's hosts, else a new one: RFC 5321 §5.1,
        each host, each of its addresses, until one answers. With the messages the
        session has carried."""
        if self._cache is not None:
            for target in self._hosts:
                for address in target.addresses:
                    parked = self._cache.take(target.host, address, self._port)
                    if parked is not None:
                        return parked.conn, (target.host, address), parked.sent
        errors: list[TransportError] = []
        for target in self._hosts:
            for address in target.addresses:
                try:
                    conn = await self._connector.connect(target.host, address, self._port)
                except TransportError as exc:
                    log.info("cannot deliver to %s [%s]: %s", target.host, address, exc)
                    errors.append(exc)
                    continue
                return conn, (target.host, address), 0
        if not errors:
            raise TransportError("no address for any host of the route", temporary=True)
        # Permanent only when every host refused permanently (a 5xx greeting everywhere).
        temporary = any(e.temporary for e in errors)
        last = errors[-1]
        raise TransportError(str(last), temporary=temporary, reply=last.reply)

    async def _send(self, conn: Connection, message: tuple[Claim, ...]) -> bool:
        """Send one message; False when the connection is no longer usable."""
        first = message[0]
        try:
            data = await self._load(first)
        except BlobMissing as exc:
            log.error("queued message %d has no body: %s", first.message_id, exc)
            reply = RemoteReply(code=554, enhanced="5.3.0", text="message body lost")
            await self._report(_uniform(message, reply, "", tls=False, verified=False))
            return True
        outgoing = Outgoing(
            sender=first.sender,
            recipients=tuple(c.recipient for c in message),
            data=data,
            smtputf8=first.smtputf8,
            eight_bit=first.eight_bit,
        )
        try:
            outcome = await conn.send(outgoing)
        except TransportError as exc:
            await self._report_error(message, exc, conn.host, conn.tls, conn.tls_verified)
            return False
        missing = RemoteReply(code=0, enhanced="", text="no reply for this recipient")
        replies = {c.recipient_id: outcome.recipients.get(c.recipient, missing) for c in message}
        await self._report(
            Result(
                claims=message,
                replies=replies,
                mx_host=conn.host,
                tls=conn.tls,
                tls_verified=conn.tls_verified,
            )
        )
        return True

    async def _report_error(
        self,
        message: tuple[Claim, ...],
        exc: TransportError,
        host: str,
        tls: bool = False,
        verified: bool = False,
    ) -> None:
        reply = exc.reply
        if reply is None or reply.temporary != exc.temporary:
            # Code 0 is "no reply": temporary. A permanent failure without a reply
            # is reported as a generic 5.4.0 (RFC 3463: routing/network failure).
            code, enhanced = (0, "") if exc.temporary else (554, "5.4.0")
            reply = RemoteReply(code=code, enhanced=enhanced, text=str(exc))
        await self._report(_uniform(message, reply, host, tls=tls, verified=verified))


def _uniform(
    message: tuple[Claim, ...], reply: RemoteReply, host: str, *, tls: bool, verified: bool
) -> Result:
    return Result(
        claims=message,
        replies={c.recipient_id: reply for c in message},
        mx_host=host,
        tls=tls,
        tls_verified=verified,
    )
