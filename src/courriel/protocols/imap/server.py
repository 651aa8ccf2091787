"""IMAP listener: thin asyncio glue around :class:`~courriel.protocols.imap.session.ImapSession`.

This module owns sockets only: accepting, reading, writing, TLS (implicit on 993,
RFC 8314; or STARTTLS, RFC 9051 §6.2.1), the inactivity timer, IDLE's concurrent wait
for changes (RFC 2177), the connection limit and shutdown. Every protocol decision is
the session's.

Invariants:
    * Whatever ends a connection, the session's ``connection_lost`` runs in a
      ``finally``.
    * During IDLE the server reads the client and waits for a change of the account at
      the same time; a pending read is never cancelled with data half-consumed (the
      StreamReader keeps unread octets).
    * All parsed-message caching goes through one :class:`MessageCache` per server.
    * A FETCH :class:`Stream` is written part by part with a drain after each, so a slow
      reader applies back-pressure and memory holds one message's response at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import ssl
from typing import cast

from courriel.mailstore.imapport import ImapStorePort
from courriel.mailstore.types import Authenticator
from courriel.protocols.imap.actions import (
    Action,
    Close,
    Delay,
    Send,
    StartTls,
    Stream,
    Tagged,
    WaitForChange,
)
from courriel.protocols.imap.cache import MessageCache
from courriel.protocols.imap.session import ImapSession, ImapSettings
from courriel.protocols.sasl import AuthThrottle

__all__ = ["ImapServer"]

log = logging.getLogger(__name__)

READ_SIZE = 65536
TLS_HANDSHAKE_TIMEOUT = 30.0
CLOSE_TIMEOUT = 5.0
WRITE_CHUNK = 65536  # octets of responses gathered into one write (about 4 TLS records)


class _Closed(Exception):
    """Internal: the session asked to close the connection."""


class ImapServer:
    """An IMAP (or IMAPS) listener.

    Args:
        settings: the listener's settings; ``settings.tls_active`` means implicit TLS.
        authenticator: checks usernames and passwords.
        store: the mail store's IMAP port.
        throttle: grows the delay after failed logins (shared across listeners).
        tls: the server TLS context; None disables STARTTLS and implicit TLS.
        implicit_tls: overrides ``settings.tls_active`` when given (IMAPS, port 993).
        cache: the parsed-message cache (shared by listeners); a 64 MB one by default.
    """

    def __init__(
        self,
        settings: ImapSettings,
        authenticator: Authenticator,
        store: ImapStorePort,
        throttle: AuthThrottle,
        tls: ssl.SSLContext | None,
        *,
        implicit_tls: bool | None = None,
        cache: MessageCache | None = None,
    ) -> None:
        implicit = settings.tls_active if implicit_tls is None else implicit_tls
        if tls is None and implicit:
            raise ValueError("implicit TLS needs a TLS context")
        self.settings = dataclasses.replace(
            settings,
            tls_active=implicit,
            tls_available=settings.tls_available and tls is not None,
        )
        self._authenticator = authenticator
        self._store = store
        self._throttle = throttle
        self._tls = tls
        self.cache = cache if cache is not None else MessageCache()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._idle: set[asyncio.Task[None]] = set()  # sessions waiting for input
        self._stopping = False
        self.port = 0

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
        implicit = self.settings.tls_active
        self._server = await asyncio.start_server(
            self._accept,
            host,
            port,
            ssl=self._tls if implicit else None,
            ssl_handshake_timeout=TLS_HANDSHAKE_TIMEOUT if implicit else None,
        )
        bound = self._server.sockets[0].getsockname()
        self.port = int(bound[1])
        log.info("IMAP listening on %s:%d (%s)", bound[0], self.port, self.settings.hostname)
        return str(bound[0]), self.port

    async def stop(self, grace: float = 10.0) -> None:
        """Stop accepting, give busy sessions ``grace`` seconds, then cut the rest.

        Sessions waiting for input (IDLE included) are cut at once.
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
        assert task is not None
        if len(self._tasks) >= self.settings.max_connections:
            with contextlib.suppress(OSError):
                # RFC 9051 §7.1.5: BYE as the greeting refuses the connection.
                writer.write(b"* BYE [UNAVAILABLE] Too many connections, try again later.\r\n")
                await writer.drain()
            await self._close(writer)
            return
        self._tasks.add(task)
        peer = writer.get_extra_info("peername")
        session = ImapSession(
            settings=self.settings,
            authenticator=self._authenticator,
            store=self._store,
            throttle=self._throttle,
            peer=str(peer[0]) if peer else "unknown",
            cache=self.cache,
        )
        try:
            await self._serve(session, reader, writer)
        except (_Closed, OSError, ssl.SSLError, EOFError):
            pass
        except Exception:
            log.exception("IMAP session failed")
        finally:
            try:
                await session.connection_lost()
            finally:
                await self._close(writer)
                self._tasks.discard(task)

    async def _serve(
        self, session: ImapSession, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await self._perform(session, session.greeting(), reader, writer)
        while not session.closed and not self._stopping:
            if session.idle_wait is not None:
                data = await self._idle_read(session, session.idle_wait, reader, writer)
            else:
                data = await self._read(session, reader, writer)
            if data is None:
                continue
            if not data:
                return
            await self._perform(session, await session.receive(data), reader, writer)
            while session.more and not session.closed:
                # Commands pipelined behind a streamed FETCH run once it is written.
                await self._perform(session, await session.receive(b""), reader, writer)

    async def _read(
        self, session: ImapSession, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bytes:
        task = asyncio.current_task()
        assert task is not None
        self._idle.add(task)
        try:
            async with asyncio.timeout(self.settings.idle_timeout):
                return await reader.read(READ_SIZE)
        except TimeoutError:
            await self._perform(session, await session.timed_out(), reader, writer)
            return b""
        finally:
            self._idle.discard(task)

    async def _idle_read(
        self,
        session: ImapSession,
        wait: WaitForChange,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> bytes | None:
        """IDLE: read, and meanwhile wait for a change or the keepalive interval.

        Returns the octets read, ``b""`` at end of input, or None after a change or a
        keepalive was handled.
        """
        task = asyncio.current_task()
        assert task is not None
        read = asyncio.ensure_future(reader.read(READ_SIZE))
        waiter = asyncio.ensure_future(self._wait_change(wait))
        self._idle.add(task)
        try:
            done, _ = await asyncio.wait({read, waiter}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._idle.discard(task)
            waiter.cancel()
            if not read.done():
                read.cancel()
        if read in done:
            return read.result()
        with contextlib.suppress(asyncio.CancelledError):
            await read  # StreamReader.read cancelled before it consumed anything
        changed = waiter.result()
        actions = await session.idle_changed() if changed else session.idle_keepalive()
        await self._perform(session, actions, reader, writer)
        return None

    async def _wait_change(self, wait: WaitForChange) -> bool:
        if wait.account_id is None:
            await asyncio.sleep(wait.keepalive)
            return False
        latest = await self._store.wait_for_change(
            wait.account_id, wait.after_change_id, wait.keepalive
        )
        return latest > wait.after_change_id

    async def _perform(
        self,
        session: ImapSession,
        actions: list[Action],
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        if any(isinstance(action, StartTls) for action in actions):
            # RFC 9051 §6.2.1: plaintext sent after STARTTLS, before our OK, would be
            # read as if it came through TLS; refuse it (the buffer has no public
            # accessor). Stop reading before the OK leaves, so the ClientHello reaches
            # the TLS layer instead of the plain-text buffer.
            if getattr(reader, "_buffer", b""):
                raise _Closed
            cast(asyncio.ReadTransport, writer.transport).pause_reading()
        # Replies are gathered and written in few calls: every write() on a TLS
        # transport becomes at least one TLS record (and its encryption call), and a
        # FETCH of 100 messages is 100 small responses.
        out: list[bytes] = []
        for action in actions:
            if isinstance(action, Send | Tagged):
                out.append(action.data)
                continue
            if isinstance(action, Stream):
                await self._stream(action, out, writer)
                continue
            if out:
                writer.write(b"".join(out))
                out.clear()
            if isinstance(action, Delay):
                await writer.drain()
                await asyncio.sleep(action.seconds)
            elif isinstance(action, StartTls):
                await self._start_tls(session, writer)
            elif isinstance(action, Close):
                await writer.drain()
                raise _Closed
            # WaitForChange: the serve loop reads session.idle_wait.
        if out:
            writer.write(b"".join(out))
        await writer.drain()

    @staticmethod
    async def _stream(action: Stream, out: list[bytes], writer: asyncio.StreamWriter) -> None:
        """Write a stream's parts in chunks of about :data:`WRITE_CHUNK` octets.

        ``out`` holds what is not written yet (it may keep a short tail for the caller).
        """
        pending = sum(len(b) for b in out)
        async for part in action.parts:
            out.append(part)
            pending += len(part)
            if pending >= WRITE_CHUNK:
                writer.write(b"".join(out))
                out.clear()
                pending = 0
                await writer.drain()

    async def _start_tls(self, session: ImapSession, writer: asyncio.StreamWriter) -> None:
        assert self._tls is not None  # the session offers STARTTLS only with a context
        await writer.drain()
        await writer.start_tls(self._tls, ssl_handshake_timeout=TLS_HANDSHAKE_TIMEOUT)
        session.tls_started()

    @staticmethod
    async def _close(writer: asyncio.StreamWriter) -> None:
        writer.close()
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await writer.wait_closed()
        except TimeoutError:
            writer.transport.abort()
        except (OSError, ssl.SSLError):
            pass
