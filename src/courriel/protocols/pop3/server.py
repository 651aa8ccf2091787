"""POP3 listener: thin asyncio glue around :class:`~courriel.protocols.pop3.session.Pop3Session`.

This module owns the POP3 loop on a socket: reading, writing, STLS (RFC 2595) and the
idle timer. Binding, implicit TLS on 995, the connection limit and shutdown are the
listener core's (:mod:`courriel.protocols.listener`). Every protocol decision is the
session's.

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
import ssl

from courriel.mailstore.types import Authenticator, MaildropPort
from courriel.protocols.effects import Close, Delay, StartTls
from courriel.protocols.listener import Listener, ListenerLines
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

READ_SIZE = 4096

_LINES = ListenerLines(
    # RFC 3206 §4 [SYS/TEMP]: a transient condition; the client may retry later.
    too_many=b"-ERR [SYS/TEMP] Too many connections, try again later.\r\n",
    shutting_down=b"-ERR [SYS/TEMP] Server shutting down, try again later.\r\n",
)


class _Closed(Exception):
    """Internal: the session asked to close the connection."""


class Pop3Server(Listener[Pop3Settings]):
    """A POP3 (or POP3S) listener.

    Sessions waiting for a command are cut at once by :meth:`stop`; a session in the
    middle of a command (a RETR being written, a QUIT applying deletions) may finish it
    within the grace period. Sessions cut this way release their locks and delete nothing.

    Args:
        settings: the listener's settings; ``settings.tls_active`` means implicit TLS.
        authenticator: checks usernames and passwords.
        maildrops: opens locked maildrops.
        throttle: grows the delay after failed logins (shared across listeners).
        tls: the server TLS context; None disables STLS and implicit TLS.
        implicit_tls: overrides ``settings.tls_active`` when given (POP3S, port 995).
    """

    protocol = "POP3"

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
        super().__init__(settings, tls, implicit_tls=implicit_tls, lines=_LINES)
        self._authenticator = authenticator
        self._maildrops = maildrops
        self._throttle = throttle

    async def serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: str
    ) -> None:
        """Run one POP3 session; its ``connection_lost`` always runs."""
        session = Pop3Session(
            settings=self.settings,
            authenticator=self._authenticator,
            maildrops=self._maildrops,
            throttle=self._throttle,
            peer=peer,
        )
        try:
            with contextlib.suppress(_Closed):
                await self._loop(session, reader, writer)
        finally:
            await session.connection_lost()

    async def _loop(
        self, session: Pop3Session, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await self._perform(session, session.greeting(), reader, writer)
        while not session.closed and not self.stopping:
            data = await self.read(reader, READ_SIZE, self.settings.idle_timeout)
            if data is None:
                await self._perform(session, await session.timed_out(), reader, writer)
                return
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
        # RFC 2595 §4: plain text sent after STLS, before our +OK, is refused.
        starts_tls = any(isinstance(action, StartTls) for action in actions)
        if starts_tls and not self.hold_for_tls(reader, writer):
            raise _Closed
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
                await self.start_tls(writer)
                session.tls_started()
            elif isinstance(action, Close):
                await writer.drain()
                raise _Closed
        await writer.drain()
