"""One outbound mail transaction: MAIL, RCPT…, DATA or BDAT, per-recipient replies.

This module owns the order of commands on an open session and how replies map
to recipients. It decides locally, without sending anything, when the receiver
cannot take the message as it is (SMTPUTF8, 8BITMIME or SIZE missing).

Invariants:
    * Every recipient of the message gets exactly one final :class:`RemoteReply`:
      the local refusal, its RCPT refusal, or the DATA/BDAT reply.
    * With PIPELINING the whole envelope (and DATA) goes in one write and every
      reply is read in order (RFC 2920 §3.1); without it, one command at a time.
    * A transaction that ends before its final reply is followed by RSET
      (RFC 5321 §4.1.1.5); a 421 reply or a failed RSET closes the connection.
"""

from __future__ import annotations

from dataclasses import dataclass

from courriel.delivery.transport import Outgoing, RemoteReply
from courriel.errors import InvalidInput
from courriel.protocols.smtp.client_parser import (
    Extensions,
    ServerReply,
    dot_stuff,
    encode_mail_from,
    encode_rcpt_to,
)
from courriel.protocols.smtp.client_wire import ClientTimeouts, Wire, remote

__all__ = ["BDAT_CHUNK", "DATA_BLOCK", "precheck", "run_transaction"]

# RFC 3030 §2: the client chooses chunk sizes; large chunks mean few round trips.
BDAT_CHUNK = 1024 * 1024
# RFC 5321 §4.5.3.2.5: the data-block timeout applies to each block we send.
DATA_BLOCK = 256 * 1024

_ACCEPTED = (250, 251)  # RFC 5321 §4.1.1.3: 251 "user not local; will forward"


def _local(code: int, enhanced: str, text: str) -> RemoteReply:
    return RemoteReply(code=code, enhanced=enhanced, text=text)


def _needs_utf8(message: Outgoing) -> bool:
    """True when the transaction must use SMTPUTF8 (RFC 6531 §3.4)."""
    return (
        message.smtputf8
        or not message.sender.isascii()
        or not all(r.isascii() for r in message.recipients)
    )


def precheck(message: Outgoing, extensions: Extensions) -> RemoteReply | None:
    """Return the refusal for every recipient when the receiver cannot take the message.

    Returns None when the message may be sent as it is.
    """
    if _needs_utf8(message) and not extensions.smtputf8:
        # RFC 6531 §3.5: a non-ASCII address must not be sent to a server without
        # SMTPUTF8; X.6.7 "non-ASCII addresses not permitted" (no downgrade here).
        return _local(553, "5.6.7", "recipient's server does not support SMTPUTF8")
    if message.eight_bit and not extensions.eight_bit_mime:
        # RFC 6152 §3: 8-bit data goes only to a server offering 8BITMIME; we do
        # not convert to 7 bit (RFC 3463 5.6.3 "conversion required but not supported").
        return _local(
            554,
            "5.6.3",
            "message has 8-bit content and the recipient's server does not support 8BITMIME",
        )
    if extensions.size and len(message.data) > extensions.size:
        # RFC 1870 §4: the server declared a fixed maximum; a larger message fails.
        return _local(552, "5.3.4", "message too big for the recipient's server")
    return None


@dataclass(slots=True)
class _Envelope:
    mail: ServerReply | None = None
    rcpts: list[ServerReply] | None = None
    data: ServerReply | None = None  # the reply to DATA when it was sent


class _Run:
    """The state of one transaction on one wire."""

    def __init__(self, wire: Wire, ext: Extensions, timeouts: ClientTimeouts) -> None:
        self.wire = wire
        self.ext = ext
        self.t = timeouts
        self.dead = False  # a 421 came: the server is closing the connection

    async def read(self, limit: float, what: str) -> ServerReply:
        reply = await self.wire.read_reply(limit, what)
        if reply.code == 421:
            # RFC 5321 §3.8: 421 means the server closes the channel.
            self.dead = True
        return reply

    async def envelope(self, mail: bytes, rcpts: list[bytes], with_data: bool) -> _Envelope:
        env = _Envelope()
        data_cmd = [b"DATA\r\n"] if with_data else []
        if self.ext.pipelining:
            # RFC 2920 §3.1: MAIL, every RCPT and DATA may go in one group.
            await self.wire.write(b"".join([mail, *rcpts, *data_cmd]), self.t.mail, "envelope")
            env.mail = await self.read(self.t.mail, "MAIL")
            env.rcpts = []
            for _ in rcpts:
                if self.dead:
                    break
                env.rcpts.append(await self.read(self.t.rcpt, "RCPT"))
            if with_data and not self.dead:
                env.data = await self.read(self.t.data_init, "DATA")
            return env
        await self.wire.write(mail, self.t.mail, "MAIL")
        env.mail = await self.read(self.t.mail, "MAIL")
        if env.mail.code != 250:
            return env
        env.rcpts = []
        for rcpt in rcpts:
            await self.wire.write(rcpt, self.t.rcpt, "RCPT")
            env.rcpts.append(await self.read(self.t.rcpt, "RCPT"))
            if self.dead:
                return env
        if with_data and any(r.code in _ACCEPTED for r in env.rcpts):
            await self.wire.write(b"DATA\r\n", self.t.data_init, "DATA")
            env.data = await self.read(self.t.data_init, "DATA")
        return env

    async def send_data(self, data: bytes) -> ServerReply:
        stuffed = dot_stuff(data)
        for start in range(0, len(stuffed), DATA_BLOCK):
            block = stuffed[start : start + DATA_BLOCK]
            await self.wire.write(block, self.t.data_block, "message data")
        return await self.read(self.t.data_end, "end of data")

    async def send_bdat(self, data: bytes) -> tuple[ServerReply, bool]:
        """Send the message in BDAT chunks; return the last reply and whether it was final."""
        chunks = [data[i : i + BDAT_CHUNK] for i in range(0, len(data), BDAT_CHUNK)] or [b""]
        for index, chunk in enumerate(chunks):
            last = index == len(chunks) - 1
            # RFC 3030 §2: BDAT <size> [LAST], then exactly <size> octets, no stuffing.
            head = f"BDAT {len(chunk)}{' LAST' if last else ''}\r\n".encode("ascii")
            await self.wire.write(head + chunk, self.t.data_block, "BDAT chunk")
            reply = await self.read(self.t.data_end if last else self.t.data_block, "BDAT")
            # RFC 3030 §2: after an error reply to a chunk, send no further chunks.
            if last or reply.code != 250:
                return reply, last
        raise AssertionError("unreachable: the last chunk returns")

    async def reset(self) -> None:
        if self.dead or self.wire.closed:
            return
        reply = await self.wire.command("RSET", self.t.command, "RSET")
        if reply.code != 250:
            self.wire.abort()


async def run_transaction(
    wire: Wire, ext: Extensions, timeouts: ClientTimeouts, message: Outgoing
) -> dict[str, RemoteReply]:
    """Send ``message`` on an open session and return the final reply per recipient.

    Raises:
        TransportError: the connection failed (it is then closed).
    """
    refusal = precheck(message, ext)
    if refusal is not None:
        return dict.fromkeys(message.recipients, refusal)
    results: dict[str, RemoteReply] = {}
    try:
        mail = _encode_mail(message, ext)
    except InvalidInput:
        bad = _local(553, "5.1.7", "the sender address cannot be sent")
        return dict.fromkeys(message.recipients, bad)
    sendable: list[str] = []
    rcpts: list[bytes] = []
    for recipient in message.recipients:
        try:
            rcpts.append(encode_rcpt_to(recipient))
            sendable.append(recipient)
        except InvalidInput:
            results[recipient] = _local(553, "5.1.3", "the recipient address cannot be sent")
    if not sendable:
        return results
    run = _Run(wire, ext, timeouts)
    results.update(await _transact(run, mail, message, sendable, rcpts))
    if run.dead:
        wire.abort()
    return results


def _encode_mail(message: Outgoing, ext: Extensions) -> bytes:
    return encode_mail_from(
        message.sender,
        # RFC 1870 §6: declare the size when SIZE is offered.
        size=len(message.data) if ext.size is not None else None,
        # RFC 6152 §3: BODY=8BITMIME for 8-bit content (RFC 6531 §3.4 implies it too).
        body="8BITMIME" if message.eight_bit and ext.eight_bit_mime else None,
        smtputf8=ext.smtputf8 and _needs_utf8(message),
    )


async def _transact(
    run: _Run, mail: bytes, message: Outgoing, recipients: list[str], rcpts: list[bytes]
) -> dict[str, RemoteReply]:
    env = await run.envelope(mail, rcpts, not run.ext.chunking)
    assert env.mail is not None
    if env.mail.code != 250 or not env.rcpts:
        # RFC 5321 §4.1.1.2: a refused MAIL ends the transaction for everyone.
        await _abandon(run, env)
        return dict.fromkeys(recipients, remote(env.mail))
    results: dict[str, RemoteReply] = {}
    accepted: list[str] = []
    for index, recipient in enumerate(recipients):
        # After a 421 no more replies come: the rest share the 421.
        reply = env.rcpts[index] if index < len(env.rcpts) else env.rcpts[-1]
        if reply.code in _ACCEPTED:
            accepted.append(recipient)
        else:
            results[recipient] = remote(reply)
    if run.dead:
        # The transaction was cut short by 421: the accepted recipients share it.
        closing = env.data or env.rcpts[-1]
        results.update(dict.fromkeys(accepted, remote(closing)))
        return results
    if not accepted:
        await _abandon(run, env)
        return results
    final, complete = await _body(run, message, env)
    if not complete:
        await run.reset()
    results.update(dict.fromkeys(accepted, remote(final)))
    return results


async def _abandon(run: _Run, env: _Envelope) -> None:
    """End a transaction that will carry no message, leaving the session reusable."""
    if env.data is not None and env.data.code == 354:
        # RFC 2920 §3.1: DATA was accepted with no valid recipient; end it empty.
        await run.wire.write(b".\r\n", run.t.data_block, "empty data")
        await run.read(run.t.data_end, "end of data")
    await run.reset()


async def _body(run: _Run, message: Outgoing, env: _Envelope) -> tuple[ServerReply, bool]:
    if run.ext.chunking:
        return await run.send_bdat(message.data)
    assert env.data is not None
    if env.data.code != 354:
        # RFC 5321 §4.1.1.4: DATA refused; the transaction did not happen.
        return env.data, False
    return await run.send_data(message.data), True
