"""POP3 listener: thin asyncio glue around :class:`~courriel.protocols.pop3.session.Pop3Session`.

This module owns sockets only: accepting, reading, writing, TLS (implicit on 995,
RFC 8314; or STLS, RFC 2595), the idle timer, the connection limit and shutdown.
Every protocol decision is the session's.

Invariants:
    * Whatever ends a connection (QUIT, drop, timeout, error, :meth:`Pop3Server.stop`),
      the session's ``connection_lost`` runs in a ``finally``, so the maildrop lock is
      released and nothing is deleted unless QUIT reached the UPDATE state.
    * RETR/TOP bodies are written chunk by chunk with a drain after each, so a large
      message is never copied whole and a slow reader applies back-pressure.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import ssl
from typing import cast

from courriel.mailstore.types import Authenticator, MaildropPort
from courriel.protocols.effects import Close, Delay, StartTls
from courriel.protocols.pop3.multiline import dot_stuffed_chunks
from courriel.protocols.pop3.session import (
    Action,
    Pop3Session,
    Pop3Settings,
    Send,
    SendMessage,
)
from courriel.protocols.sasl import AuthThrottle

__all__ = ["Pop3Server"]

log = logging.getLogger(__name__)

READ_SIZE = 4096
TLS_HANDSHAKE_TIMEOUT = 30.0
CLOSE_TIMEOUT = 5.0


class _Closed(Exception):
    """Internal: the session asked to close the connection."""


class Pop3Server:
    """A POP3 (or POP3S) listener.

    Args:
        settings: the listener's settings; ``settings.tls_active`` means implicit TLS.
        authenticator: checks usernames and passwords.
        maildrops: opens locked maildrops.
        throttle: grows the delay after failed logins (shared across listeners).
        tls: the server TLS context; None disables STLS and implicit TLS.
        implicit_tls: overrides ``settings.tls_active`` when given (POP3S, port 995).
    """

    def __init__(
        self,
        settings: Pop3Settings,
        authenticator: Authenticator,
        maildrops: MaildropPort,
        throttle: AuthThrottle,
        tls: ssl.SSLContext | None,
        *,
        implicit_tls: bool | None = None,
    ) -> None:
        implicit = settings.tls_active if implicit_tls is None else implicit_tls
        if tls is None and implicit:
            raise ValueError("implicit TLS needs a TLS context")
        # The session's view must match the socket: STLS only with a context.
        self.settings = dataclasses.replace(
            settings,
            tls_active=implicit,
            tls_available=settings.tls_available and tls is not None,
        )
        self._authenticator = authenticator
        self._maildrops = maildrops
        self._throttle = throttle
        self._tls = tls
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._idle: set[asyncio.Task[None]] = set()  # sessions waiting for a command
        self._stopping = False
        self.port = 0  # the bound port, once started

    @property
    def connections(self) -> int:
        """Connections being served now."""
        return len(self._tasks)

    async def start(self, host: str, port: int) -> tuple[str, int]:
        """Bind and start accepting.

        Args:
            host: the address to bind (tests use ``127.0.0.1``).
            port: the port; 0 picks a free one (see :attr:`port`).

        Returns:
            The bound host and port.

        Raises:
            OSError: the address cannot be bound.
        """
        self._server = await asyncio.start_server(
            self._accept,
            host,
            port,
            ssl=self._tls if self.settings.tls_active else None,
            ssl_handshake_timeout=TLS_HANDSHAKE_TIMEOUT if self.settings.tls_active else None,
        )
        bound = self._server.sockets[0].getsockname()
        self.port = int(bound[1])
        log.info("POP3 listening on %s:%d (%s)", bound[0], self.port, self.settings.hostname)
        return str(bound[0]), self.port

    async def stop(self, grace: float = 10.0) -> None:
        """Stop accepting, give busy sessions ``grace`` seconds, then cut the rest.

        Sessions waiting for a command are cut at once; a session in the middle of a
        command (a RETR being written, a QUIT applying deletions) may finish it. Sessions
        cut this way release their locks and delete nothing.
        """
        self._stopping = True
        if self._server is not None:
            self._server.close()
        for task in self._idle:
            task.cancel()
        tasks = set(self._tasks)
        if tasks and grace > 0:
            await asyncio.wait(tasks, timeout=grace)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None  # start_server runs each client in its own task
        if len(self._tasks) >= self.settings.max_connections:
            # RFC 3206 §4 [SYS/TEMP]: a transient condition; the client may retry later.
            with contextlib.suppress(OSError):
                writer.write(b"-ERR [SYS/TEMP] Too many connections, try again later.\r\n")
                await writer.drain()
            await self._close(writer)
            return
        self._tasks.add(task)
        peer = writer.get_extra_info("peername")
        session = Pop3Session(
            settings=self.settings,
            authenticator=self._authenticator,
            maildrops=self._maildrops,
            throttle=self._throttle,
            peer=str(peer[0]) if peer else "unknown",
        )
        try:
            await self._serve(session, reader, writer)
        except (_Closed, OSError, ssl.SSLError, EOFError):
            pass
        except Exception:
            log.exception("POP3 session failed")
        finally:
            try:
                await session.connection_lost()
            finally:
                await self._close(writer)
                self._tasks.discard(task)

    async def _serve(
        self, session: Pop3Session, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        await self._perform(session, session.greeting(), reader, writer)
        while not session.closed and not self._stopping:
            self._idle.add(task)
            try:
                async with asyncio.timeout(self.settings.idle_timeout):
                    data = await reader.read(READ_SIZE)
            except TimeoutError:
                await self._perform(session, await session.timed_out(), reader, writer)
                return
            finally:
                self._idle.discard(task)
            if not data:
                return
            await self._perform(session, await session.receive(data), reader, writer)

    async def _perform(
        self,
        session: Pop3Session,
        actions: list[Action],
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        if any(isinstance(action, StartTls) for action in actions):
            # RFC 2595 §4: plaintext the client sent after STLS, before our +OK, would
            # be read as if it came through TLS (injection); the buffer has no public
            # accessor. Then stop reading before the +OK leaves, so the ClientHello that
            # answers it reaches the TLS layer instead of the plain-text buffer.
            if getattr(reader, "_buffer", b""):
                raise _Closed
            cast(asyncio.ReadTransport, writer.transport).pause_reading()
        for action in actions:
            if isinstance(action, Send):
                writer.write(action.data)
            elif isinstance(action, SendMessage):
                for chunk in dot_stuffed_chunks(action.data, action.end, self.settings.chunk_size):
                    writer.write(chunk)
                    await writer.drain()
            elif isinstance(action, Delay):
                await writer.drain()
                await asyncio.sleep(action.seconds)
            elif isinstance(action, StartTls):
                await self._start_tls(session, reader, writer)
            elif isinstance(action, Close):
                await writer.drain()
                raise _Closed
        await writer.drain()

    async def _start_tls(
        self, session: Pop3Session, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        assert self._tls is not None  # the session offers STLS only with a context
        await writer.drain()
        await writer.start_tls(self._tls, ssl_handshake_timeout=TLS_HANDSHAKE_TIMEOUT)
        session.tls_started()

    @staticmethod
    async def _close(writer: asyncio.StreamWriter) -> None:
        writer.close()
        try:
            # A TLS peer that never answers close_notify must not hold up stop().
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await writer.wait_closed()
        except TimeoutError:
            writer.transport.abort()
        except (OSError, ssl.SSLError):
            pass
