"""The SMTP client's byte pipe: one stream, replies in, commands out, with timeouts.

This module owns the only place where the client touches the socket. Every
failure (timeout, reset, end of stream, an unreadable reply) becomes a
:class:`courriel.delivery.transport.TransportError` with ``temporary=True``, and
the socket is aborted, so a broken connection is never reused.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from courriel.delivery.transport import RemoteReply, TransportError
from courriel.errors import SyntaxProblem
from courriel.protocols.smtp.client_parser import ReplyParser, ServerReply

__all__ = ["READ_SIZE", "ClientTimeouts", "Wire", "remote"]

READ_SIZE = 65536


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientTimeouts:
    """Seconds to wait for each step; the defaults are RFC 5321 §4.5.3.2's minimums."""

    connect: float = 30.0  # TCP connect (and the implicit-TLS handshake)
    greeting: float = 300.0  # RFC 5321 §4.5.3.2.1: initial 220 message, 5 minutes
    command: float = 300.0  # EHLO, STARTTLS, AUTH, RSET (RFC 5321 §4.5.3.2.7's 5 minutes)
    tls_handshake: float = 60.0  # RFC 3207 handshake after the 220 to STARTTLS
    mail: float = 300.0  # RFC 5321 §4.5.3.2.2: MAIL command, 5 minutes
    rcpt: float = 300.0  # RFC 5321 §4.5.3.2.3: RCPT command, 5 minutes
    data_init: float = 120.0  # RFC 5321 §4.5.3.2.4: DATA initiation, 2 minutes
    data_block: float = 180.0  # RFC 5321 §4.5.3.2.5: each data block sent, 3 minutes
    data_end: float = 600.0  # RFC 5321 §4.5.3.2.6: DATA termination, 10 minutes


class Wire:
    """Reads replies and writes commands on one stream; every failure is a TransportError."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: str
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.peer = peer
        self.parser = ReplyParser()
        self.closed = False

    async def read_reply(self, limit: float, what: str) -> ServerReply:
        """Return the next reply, waiting at most ``limit`` seconds for all of it."""
        try:
            async with asyncio.timeout(limit):
                while True:
                    reply = self.parser.next_reply()
                    if reply is not None:
                        return reply
                    data = await self.reader.read(READ_SIZE)
                    if not data:
                        raise self._lost(f"connection closed by {self.peer} awaiting {what} reply")
                    self.parser.feed(data)
        except TimeoutError:
            raise self._lost(f"timed out after {limit}s awaiting {what} reply") from None
        except SyntaxProblem as exc:
            raise self._lost(f"unreadable {what} reply from {self.peer}: {exc.public}") from None
        except (OSError, EOFError) as exc:
            raise self._lost(f"connection to {self.peer} failed awaiting {what}: {exc}") from None

    async def write(self, data: bytes, limit: float, what: str) -> None:
        """Send ``data``; the whole write must drain within ``limit`` seconds."""
        if self.closed:
            raise TransportError(f"connection to {self.peer} is closed", temporary=True)
        try:
            self.writer.write(data)
            async with asyncio.timeout(limit):
                await self.writer.drain()
        except TimeoutError:
            raise self._lost(f"timed out after {limit}s sending {what}") from None
        except OSError as exc:
            raise self._lost(f"connection to {self.peer} failed sending {what}: {exc}") from None

    async def command(self, line: str, limit: float, what: str) -> ServerReply:
        """Send one command line and return its reply."""
        await self.write(line.encode("utf-8") + b"\r\n", limit, what)
        return await self.read_reply(limit, what)

    def _lost(self, message: str) -> TransportError:
        self.abort()
        return TransportError(message, temporary=True)

    def abort(self) -> None:
        """Close the socket at once (no QUIT)."""
        if not self.closed:
            self.closed = True
            self.writer.transport.abort()


def remote(reply: ServerReply) -> RemoteReply:
    """The transport-level form of a reply."""
    return RemoteReply(code=reply.code, enhanced=reply.enhanced, text=reply.text)
