"""The SMTP listener: thin asyncio glue around :class:`SmtpSession`.

The server only reads, writes, waits and upgrades TLS; every protocol decision is
the session's. It owns the SMTP loop: the command and data timeouts (``421 4.4.2``
then close), STARTTLS via ``StreamWriter.start_tls`` (RFC 3207), the anti-abuse
delays the session asks for, and which reads shutdown may interrupt. Binding,
implicit TLS (port 465, RFC 8314), the connection limit and the shutdown sequence
are the listener core's (:mod:`courriel.protocols.listener`).

Invariants:

* Replies are written once per received packet, after every command in it was
  handled, i.e. when the input buffer is drained (RFC 2920 §3.1).
* Plain-text octets received after STARTTLS are never read as commands
  (RFC 3207 §4.2; the session drops its buffer, the server closes the
  connection if the stream still holds some).
* ``stop(grace)``: no new connections; idle sessions get ``421 4.3.2`` and are
  closed; sessions inside DATA/BDAT may finish (their 250 is sent) within
  ``grace`` seconds; then whatever is left gets ``421 4.3.2`` and is closed.
"""

from __future__ import annotations

import asyncio
import logging
import ssl

from courriel.delivery.targets import DeliveryTarget
from courriel.mailstore.types import Authenticator
from courriel.protocols.effects import Close, Delay, StartTls
from courriel.protocols.listener import Listener, ListenerLines
from courriel.protocols.sasl import AuthThrottle
from courriel.protocols.smtp.replies import Action, Reply
from courriel.protocols.smtp.session import (
    SHUTTING_DOWN,
    TIMEOUT,
    TOO_MANY_CONNECTIONS,
    SmtpSession,
    SmtpSettings,
)

__all__ = ["SmtpServer"]

log = logging.getLogger(__name__)

READ_SIZE = 65536
LOCAL_FAILURE = Reply.of(421, "4.3.0", "Local error, closing connection")

_LINES = ListenerLines(
    too_many=TOO_MANY_CONNECTIONS.to_bytes(),
    shutting_down=SHUTTING_DOWN.to_bytes(),
    cut=SHUTTING_DOWN.to_bytes(),
    failed=LOCAL_FAILURE.to_bytes(),
)


class SmtpServer(Listener[SmtpSettings]):
    """One SMTP listener (MX, submission with STARTTLS, or submissions with implicit TLS)."""

    protocol = "SMTP"

    def __init__(
        self,
        settings: SmtpSettings,
        target: DeliveryTarget,
        authenticator: Authenticator | None,
        throttle: AuthThrottle,
        ssl_context: ssl.SSLContext | None,
        *,
        implicit_tls: bool | None = None,
    ) -> None:
        """Configure the listener; nothing is bound until :meth:`start`.

        Args:
            settings: the listener's settings (``tls_active`` also means implicit TLS).
            target: where accepted messages go.
            authenticator: checks AUTH credentials; None on MX listeners.
            throttle: the delay policy after failed AUTH attempts.
            ssl_context: the server certificate; None disables STARTTLS.
            implicit_tls: TLS from the first octet (port 465, RFC 8314 §3.3); overrides
                ``settings.tls_active`` when given.

        Raises:
            InvalidInput: implicit TLS without an SSL context.
        """
        super().__init__(settings, ssl_context, implicit_tls=implicit_tls, lines=_LINES)
        self.target = target
        self.authenticator = authenticator
        self.throttle = throttle

    async def serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: str
    ) -> None:
        """Run one SMTP session; ``aclose`` always runs (a transaction left open aborts)."""
        session = SmtpSession(
            self.settings,
            self.target,
            authenticator=self.authenticator,
            throttle=self.throttle,
            peer_ip=peer,
        )
        try:
            await self._loop(session, reader, writer)
        finally:
            await session.aclose()

    async def _loop(
        self, session: SmtpSession, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        if not await self._perform(session, reader, writer, session.greeting()):
            return
        while not session.closed:
            in_message = session.in_message
            if self.stopping and not in_message:
                writer.write(SHUTTING_DOWN.to_bytes())
                return
            timeout = self.settings.data_timeout if in_message else self.settings.command_timeout
            # Waiting for a command is idle (stop() cuts it with 421 4.3.2); a message
            # being received is busy, so its 250 can still be sent within the grace.
            data = await self.read(reader, READ_SIZE, timeout, idle=not in_message)
            if data is None:
                writer.write(TIMEOUT.to_bytes())
                return
            if not data:
                return
            actions = await session.receive(data)
            if not await self._perform(session, reader, writer, actions):
                return

    async def _perform(
        self,
        session: SmtpSession,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        actions: list[Action],
    ) -> bool:
        """Carry out the session's actions in order; False when the connection must end."""
        pending = bytearray()
        for action in actions:
            if isinstance(action, Reply):
                pending += action.to_bytes()
                continue
            if isinstance(action, StartTls):
                if not await self._start_tls(session, reader, writer, pending):
                    return False
                continue
            await self._flush(writer, pending)
            if isinstance(action, Delay):
                # The anti-abuse delay (AuthThrottle), not a synchronisation.
                await asyncio.sleep(action.seconds)
            elif isinstance(action, Close):
                return False
        await self._flush(writer, pending)
        return True

    async def _flush(self, writer: asyncio.StreamWriter, pending: bytearray) -> None:
        if pending:
            writer.write(bytes(pending))
            pending.clear()
            await asyncio.wait_for(writer.drain(), self.settings.command_timeout)

    async def _start_tls(
        self,
        session: SmtpSession,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        pending: bytearray,
    ) -> bool:
        """Send the 220 held in ``pending`` and upgrade; False when the connection must end."""
        # RFC 3207 §4.2: plain text received before our 220 is an injection attempt
        # (CVE-2011-0411).
        if not self.hold_for_tls(reader, writer):
            log.info("smtp %s: data pipelined after STARTTLS, closing", session.peer_ip)
            return False
        await self._flush(writer, pending)
        await self.start_tls(writer)
        session.tls_established()
        return True
