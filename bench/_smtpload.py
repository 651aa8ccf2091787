"""SMTP load generator for ``bench/smtp_receive.py``: N concurrent clients on raw asyncio streams.

It runs in a process of its own so that it never shares an event loop (or, on a 2-core
machine, a core's worth of scheduling) with the server under test, and it is the same code
for every server so that the comparison is fair. It is kept cheap: one pre-built body per
client with only a unique header line changed per message, no parsing beyond reply codes,
and PIPELINING of MAIL/RCPT/DATA whenever the server's EHLO advertises it.

Invariants:
    * Latency of one message is measured from the first byte of MAIL to the reply after the
      end-of-data dot; only messages answered with 250 count as delivered.
    * Every read has a timeout and every loop is bounded by the message counts, so a server
      that stalls ends the run with failures instead of hanging it.
    * Output is one JSON object on stdout (see :func:`summarise`); nothing else is printed.

Usage (normally started by ``smtp_receive.py``)::

    python bench/_smtpload.py --port 2525 --clients 4 --messages 10
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import math
import sys
import time
from collections import Counter
from dataclasses import dataclass, field

from courriel.errors import ProtocolError

__all__ = ["LoadSpec", "Tally", "build_message", "percentile", "run_load", "summarise"]

# RFC 5321 §4.5.3.1.5: a reply line is at most 512 octets; a multiline EHLO reply is short.
_MAX_REPLY_LINES = 100
_STEPS = ((250, "MAIL"), (250, "RCPT"), (354, "DATA"))  # replies wanted, in order
_LINE = b"x" * 76 + b"\r\n"  # RFC 5322 §2.1.1: lines of at most 78 characters plus CRLF


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadSpec:
    """What one load run sends."""

    host: str
    port: int
    clients: int  # concurrent SMTP clients
    messages: int  # messages per client
    size: int  # approximate size of each message in bytes, headers included
    per_connection: int  # messages sent on one connection before QUIT
    recipient: str
    timeout: float  # seconds allowed for any one reply


@dataclass(slots=True)
class Tally:
    """Results gathered by every client of one run (the loop is single-threaded)."""

    ok: int = 0
    latencies: list[float] = field(default_factory=list)  # seconds, delivered messages only
    failures: Counter[str] = field(default_factory=Counter)  # reason -> messages


def build_message(client: int, size: int) -> tuple[bytes, bytes]:
    """Return the headers before the unique Message-ID and the rest of one client's message.

    The body is made of lines of ``x`` that never start with a dot, so no dot-stuffing
    (RFC 5321 §4.5.2) is needed and the message can be sent as it is.
    """
    head = (
        f"From: <bench{client}@client.test>\r\n"
        "To: <user@bench.test>\r\n"
        "Subject: courriel receive benchmark\r\n"
        "Date: Thu, 01 Jan 2026 00:00:00 +0000\r\n"
    ).encode()
    rest = b"MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n"
    missing = max(0, size - len(head) - len(rest) - 60)
    body = _LINE * max(1, math.ceil(missing / len(_LINE)))
    return head, rest + body


async def _read_reply(
    reader: asyncio.StreamReader, timeout: float, lines: list[bytes] | None = None
) -> tuple[int, bytes]:
    """Read one reply; return its code and last line, appending every line to ``lines``."""
    # RFC 5321 §4.2.1: continuation lines are "code-text"; the last line is "code text".
    for _ in range(_MAX_REPLY_LINES):
        line = await asyncio.wait_for(reader.readline(), timeout)
        if not line.endswith(b"\n"):
            raise ConnectionResetError("connection closed by the server")
        if lines is not None:
            lines.append(line)
        if len(line) < 4 or line[3:4] != b"-":
            if not line[:3].isdigit():
                raise ProtocolError(0, "", "unreadable reply", internal=repr(line[:80]))
            return int(line[:3]), line
    raise ProtocolError(0, "", "reply has too many lines")


def _expect(got: tuple[int, bytes], code: int, what: str) -> None:
    if got[0] != code:
        text = got[1].decode("ascii", "replace").strip()[:80]
        raise ProtocolError(got[0], "", f"{what}: {text}")


class _Connection:
    """One SMTP connection: greeting and EHLO done on open, then messages, then QUIT."""

    def __init__(self, spec: LoadSpec, client: int) -> None:
        self.spec = spec
        self.sender = f"bench{client}@client.test".encode()
        self.head, self.rest = build_message(client, spec.size)
        self.pipelining = False
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.answered = 0  # messages of this connection with a final reply, 250 or not

    async def open(self) -> None:
        timeout = self.spec.timeout
        conn = asyncio.open_connection(self.spec.host, self.spec.port)
        reader, writer = await asyncio.wait_for(conn, timeout)
        self.reader, self.writer = reader, writer
        _expect(await _read_reply(reader, timeout), 220, "greeting")
        writer.write(b"EHLO bench-client.test\r\n")
        lines: list[bytes] = []
        _expect(await _read_reply(reader, timeout, lines), 250, "EHLO")
        # RFC 2920 §3.1: a client may pipeline only when EHLO lists PIPELINING.
        self.pipelining = any(line[4:].strip().upper() == b"PIPELINING" for line in lines)

    async def send(self, sequence: int) -> float:
        """Send one message and return its latency in seconds (raise unless 250)."""
        assert self.reader is not None and self.writer is not None
        reader, writer, timeout = self.reader, self.writer, self.spec.timeout
        mail = b"MAIL FROM:<" + self.sender + b"> SIZE=%d\r\n" % (self.spec.size + 100)
        rcpt = b"RCPT TO:<" + self.spec.recipient.encode() + b">\r\n"
        message_id = b"Message-ID: <%d.%s>\r\n" % (sequence, self.sender)
        started = time.perf_counter()
        if self.pipelining:
            # RFC 2920 §3.1: MAIL, RCPT and DATA may be sent in one group, DATA last.
            writer.write(mail + rcpt + b"DATA\r\n")
            replies = [await _read_reply(reader, timeout) for _ in range(3)]
        else:
            replies = []
            for command in (mail, rcpt, b"DATA\r\n"):
                writer.write(command)
                replies.append(await _read_reply(reader, timeout))
                if replies[-1][0] >= 400:
                    break
        if replies[-1][0] == 354 and any(code != 250 for code, _ in replies[:-1]):
            # RFC 2920 §3.1: the server said 354 although a command failed; end the empty
            # transaction so the connection stays usable, then report the first failure.
            writer.write(b".\r\n")
            await _read_reply(reader, timeout)
        for reply, (want, what) in zip(replies, _STEPS, strict=False):
            _expect(reply, want, what)
        writer.writelines((self.head, message_id, self.rest, b".\r\n"))
        _expect(await _read_reply(reader, timeout), 250, "end of data")
        return time.perf_counter() - started

    async def reset(self) -> None:
        """Abort the current transaction with RSET (raise unless 250)."""
        assert self.reader is not None and self.writer is not None
        self.writer.write(b"RSET\r\n")
        _expect(await _read_reply(self.reader, self.spec.timeout), 250, "RSET")

    async def close(self) -> None:
        if self.writer is None:
            return
        try:
            if self.reader is not None and not self.writer.is_closing():
                self.writer.write(b"QUIT\r\n")
                await _read_reply(self.reader, self.spec.timeout)
        except (OSError, TimeoutError, ProtocolError):
            pass  # the messages are already counted; a rude close does not change them
        finally:
            self.writer.close()


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ProtocolError):
        return exc.public
    if isinstance(exc, TimeoutError):
        return "timeout waiting for a reply"
    return f"{type(exc).__name__}: {exc}"


async def _send_batch(conn: _Connection, first: int, batch: int, tally: Tally) -> None:
    """Send ``batch`` messages on an open connection, counting each in ``conn.answered``."""
    for done in range(batch):
        try:
            tally.latencies.append(await conn.send(first + done))
            tally.ok += 1
        except ProtocolError as exc:
            # A refused message: count it, reset the transaction (RFC 5321 §4.1.1.5), go on.
            tally.failures[_reason(exc)] += 1
            conn.answered += 1
            await conn.reset()
        else:
            conn.answered += 1


async def _client(spec: LoadSpec, client: int, tally: Tally) -> None:
    sent = 0
    for _ in range(math.ceil(spec.messages / spec.per_connection)):
        batch = min(spec.per_connection, spec.messages - sent)
        conn = _Connection(spec, client)
        try:
            await conn.open()
            await _send_batch(conn, client * spec.messages + sent, batch, tally)
        except (OSError, TimeoutError, ProtocolError) as exc:
            # The connection is lost: the messages of its batch not yet answered are lost too.
            tally.failures[_reason(exc)] += batch - conn.answered
        finally:
            await conn.close()
        sent += batch


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending list (0.0 for an empty list)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


async def run_load(spec: LoadSpec) -> tuple[Tally, float]:
    """Run every client at once; return the tally and the wall-clock seconds taken."""
    tally = Tally()
    started = time.perf_counter()
    await asyncio.gather(*(_client(spec, client, tally) for client in range(spec.clients)))
    return tally, time.perf_counter() - started


def summarise(spec: LoadSpec, tally: Tally, seconds: float) -> dict[str, object]:
    """The JSON document printed for ``smtp_receive.py``."""
    latencies = sorted(tally.latencies)
    return {
        "attempted": spec.clients * spec.messages,
        "ok": tally.ok,
        "failed": sum(tally.failures.values()),
        "failures": dict(tally.failures.most_common(10)),
        "seconds": seconds,
        "msg_per_s": tally.ok / seconds if seconds > 0 else 0.0,
        "p50_ms": percentile(latencies, 0.50) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
    }


def _parse(argv: list[str] | None) -> LoadSpec:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--messages", type=int, default=100)
    parser.add_argument("--size", type=int, default=5000)
    parser.add_argument("--per-connection", type=int, default=10)
    parser.add_argument("--recipient", default="user@bench.test")
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args(argv)
    if args.host != "127.0.0.1":
        parser.error("this benchmark only talks to 127.0.0.1")
    for name in ("clients", "messages", "size", "per_connection"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    return LoadSpec(
        host=args.host,
        port=args.port,
        clients=args.clients,
        messages=args.messages,
        size=args.size,
        per_connection=args.per_connection,
        recipient=args.recipient,
        timeout=args.timeout,
    )


def main(argv: list[str] | None = None) -> None:
    """Run one load and print its summary as JSON."""
    spec = _parse(argv)
    # The client uses uvloop when present, like the servers, to stay cheap.
    try:
        runner = importlib.import_module("uvloop").run
    except (ImportError, AttributeError):
        runner = asyncio.run
    tally, seconds = runner(run_load(spec))
    json.dump(summarise(spec, tally, seconds), sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
