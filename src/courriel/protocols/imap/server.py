"""IMAP listener: thin asyncio glue around :class:`~courriel.protocols.imap.session.ImapSession`.

This module owns the IMAP loop on a socket: reading, writing, STARTTLS (RFC 9051
§6.2.1), the inactivity timer and IDLE's concurrent wait for changes (RFC 2177).
Binding, implicit TLS on 993, the connection limit and shutdown are the listener
core's (:mod:`courriel.protocols.listener`). Every protocol decision is the session's.

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
import ssl

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
from courriel.protocols.listener import Listener, ListenerLines
from courriel.protocols.sasl import AuthThrottle

__all__ = ["ImapServer"]

READ_SIZE = 65536
WRITE_CHUNK = 65536  # octets of responses gathered into one write (about 4 TLS records)

_LINES = ListenerLines(
    # RFC 9051 §7.1.5: BYE as the greeting refuses the connection.
    too_many=b"* BYE [UNAVAILABLE] Too many connections, try again later.\r\n",
    shutting_down=b"* BYE [UNAVAILABLE] Server shutting down, try again later.\r\n",
)


class _Closed(Exception):
    """Internal: the session asked to close the connection."""


class ImapServer(Listener[ImapSettings]):
    """An IMAP (or IMAPS) listener.

    Sessions waiting for input (IDLE included) are cut at once by :meth:`stop`.

    Args:
        settings: the listener's settings; ``settings.tls_active`` means implicit TLS.
        authenticator: checks usernames and passwords.
        store: the mail store's IMAP port.
        throttle: grows the delay after failed logins (shared across listeners).
        tls: the server TLS context; None disables STARTTLS and implicit TLS.
        implicit_tls: overrides ``settings.tls_active`` when given (IMAPS, port 993).
        cache: the parsed-message cache (shared by listeners); a 64 MB one by default.
    """

    protocol = "IMAP"

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
        super().__init__(settings, tls, implicit_tls=implicit_tls, lines=_LINES)
        self._authenticator = authenticator
        self._store = store
        self._throttle = throttle
        self.cache = cache if cache is not None else MessageCache()

    async def serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: str
    ) -> None:
        """Run one IMAP session; its ``connection_lost`` always runs."""
        session = ImapSession(
            settings=self.settings,
            authenticator=self._authenticator,
            store=self._store,
            throttle=self._throttle,
            peer=peer,
            cache=self.cache,
        )
        try:
            with contextlib.suppress(_Closed):
                await self._loop(session, reader, writer)
        finally:
            await session.connection_lost()

    async def _loop(
        self, session: ImapSession, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await self._perform(session, session.greeting(), reader, writer)
        while not session.closed and not self.stopping:
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
        data = await self.read(reader, READ_SIZE, self.settings.idle_timeout)
        if data is None:
            await self._perform(session, await session.timed_out(), reader, writer)
            return b""
        return data

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
        read = asyncio.ensure_future(reader.read(READ_SIZE))
        waiter = asyncio.ensure_future(self._wait_change(wait))
        try:
            with self.idle():
                done, _ = await asyncio.wait({read, waiter}, return_when=asyncio.FIRST_COMPLETED)
        finally:
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
        # RFC 9051 §6.2.1: plain text sent after STARTTLS, before our OK, is refused.
        starts_tls = any(isinstance(action, StartTls) for action in actions)
        if starts_tls and not self.hold_for_tls(reader, writer):
            raise _Closed
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
                await self.start_tls(writer)
                session.tls_started()
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
