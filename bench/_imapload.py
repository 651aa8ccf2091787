"""IMAP load generator for ``bench/imap.py``: N concurrent IMAPS clients on raw asyncio streams.

It runs in a process of its own (never on the server's event loop, and measured: it prints
its own CPU time) and is the same code for every server. Each client logs in, selects INBOX
and then, until the deadline, runs operations drawn from a fixed mix with its own seeded
random generator (so every server gets the same sequence of commands):

========  =====================================================  ======
kind      command                                                weight
========  =====================================================  ======
select    ``SELECT INBOX``                                       5
fetch     ``FETCH a:a+99 (FLAGS ENVELOPE)`` (a random range)     30
body      ``UID FETCH u BODY.PEEK[]`` (one message)               30
search    ``UID SEARCH ...`` (a flag, a header, a date)          10
store     ``UID STORE u +FLAGS.SILENT (\\Flagged)`` / ``-FLAGS``   25
========  =====================================================  ======

Beside them one client IDLEs on INBOX while another APPENDs a small message every
``--idle-every`` seconds; ``wake`` is the time from the APPEND's first byte to the
``* n EXISTS`` the idler receives.

Invariants:
    * Latency of an operation is from its first byte to its tagged reply; only tagged OK
      replies count, anything else is a failure counted by kind and reason.
    * Every read has a timeout, so a stalled server ends the run with failures, not a hang.
    * Output is one JSON object on stdout; nothing else is printed there.

Usage (normally started by ``imap.py``)::

    python bench/_imapload.py --port 2993 --user user@bench.test --password pw --count 10000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import math
import random
import re
import resource
import ssl
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field

__all__ = ["KINDS", "Tally", "percentile", "run_load"]

KINDS = ("select", "fetch", "body", "search", "store", "wake")
_MIX = (("select", 5), ("fetch", 30), ("body", 30), ("search", 10), ("store", 25))
_LITERAL = re.compile(rb"\{(\d+)\+?\}\r\n$")
_EXISTS = re.compile(rb"^\* (\d+) EXISTS\r\n$")
_WORDS = ("order", "invoice", "shipping", "refund", "newsletter", "winter", "scarf", "gift")


@dataclass(slots=True)
class Tally:
    """Latencies and failures of every client (the loop is single-threaded)."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    failures: Counter[str] = field(default_factory=Counter)


class Client:
    """One IMAP connection: sends tagged commands and reads up to their tagged reply."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.counter = 0
        self.timeout = 60.0
        self.exists = 0  # EXISTS of the last SELECT

    async def response(self) -> bytes:
        """One response line with the literals it announces (their bytes are skipped)."""
        line = await asyncio.wait_for(self.reader.readuntil(b"\r\n"), self.timeout)
        while (match := _LITERAL.search(line)) is not None:
            await asyncio.wait_for(self.reader.readexactly(int(match.group(1))), self.timeout)
            line = await asyncio.wait_for(self.reader.readuntil(b"\r\n"), self.timeout)
        return line

    async def command(self, text: bytes) -> bytes:
        """Send one command; return its tagged reply line (untagged ones are read past)."""
        self.counter += 1
        tag = b"t%d" % self.counter
        self.writer.write(tag + b" " + text + b"\r\n")
        prefix = tag + b" "
        while True:
            line = await self.response()
            if line.startswith(prefix):
                return line[len(prefix) :]

    async def append(self, mailbox: bytes, message: bytes) -> bytes:
        """APPEND with a LITERAL+ literal (both servers announce it)."""
        header = b"APPEND " + mailbox + b" {%d+}\r\n" % len(message)
        return await self.command(header + message)

    async def close(self) -> None:
        # The server may already have gone; LOGOUT is a courtesy here.
        with contextlib.suppress(OSError, TimeoutError, asyncio.IncompleteReadError):
            await asyncio.wait_for(self.command(b"LOGOUT"), 10)
        self.writer.close()


async def connect(args: argparse.Namespace, context: ssl.SSLContext) -> Client:
    """Open an IMAPS connection, read the greeting, log in."""
    reader, writer = await asyncio.open_connection(
        args.host, args.port, ssl=context, server_hostname=args.tls_name, limit=1 << 20
    )
    client = Client(reader, writer)
    await client.response()
    reply = await client.command(b"LOGIN %s %s" % (args.user.encode(), args.password.encode()))
    if not reply.startswith(b"OK"):
        raise ConnectionError(f"LOGIN refused: {reply!r}")
    return client


def _pick(rng: random.Random) -> str:
    total = sum(weight for _, weight in _MIX)
    point = rng.randrange(total)
    for kind, weight in _MIX:
        if point < weight:
            return kind
        point -= weight
    raise AssertionError("unreachable")


def _command(kind: str, rng: random.Random, count: int) -> bytes:
    """The command for one operation of ``kind`` on a mailbox of ``count`` messages."""
    uid = rng.randint(1, count)
    if kind == "select":
        return b"SELECT INBOX"
    if kind == "fetch":
        start = rng.randint(1, max(1, count - 99))
        return b"FETCH %d:%d (FLAGS ENVELOPE)" % (start, min(count, start + 99))
    if kind == "body":
        return b"UID FETCH %d BODY.PEEK[]" % uid
    if kind == "search":
        choice = rng.randrange(3)
        if choice == 0:
            return b"UID SEARCH FLAGGED"
        if choice == 1:
            return b"UID SEARCH SUBJECT %s" % rng.choice(_WORDS).encode()
        return b"UID SEARCH SINCE 1-Jan-2026 FROM customer%d" % rng.randrange(100)
    sign = b"+" if rng.random() < 0.5 else b"-"
    return b"UID STORE %d %sFLAGS.SILENT (\\Flagged)" % (uid, sign)


async def worker(
    client: Client, number: int, args: argparse.Namespace, tally: Tally, deadline: float
) -> None:
    """One logged-in client with INBOX selected: run the mix until the deadline."""
    rng = random.Random(args.seed * 1000 + number)
    try:
        while time.monotonic() < deadline:
            kind = _pick(rng)
            started = time.perf_counter()
            reply = await client.command(_command(kind, rng, args.count))
            if reply.startswith(b"OK"):
                tally.latencies[kind].append(time.perf_counter() - started)
            else:
                tally.failures[f"{kind}: {reply[:80].decode('ascii', 'replace').strip()}"] += 1
    except (OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
        tally.failures[f"connection lost: {type(exc).__name__}"] += 1
        return
    await client.close()


async def idle_pair(
    idler: Client, appender: Client, args: argparse.Namespace, tally: Tally, deadline: float
) -> None:
    """One client IDLEs; another APPENDs every ``--idle-every`` s; record the wake latency."""
    exists = idler.exists
    message = b"From: idle@bench.test\r\nSubject: wake up\r\n\r\nnew mail\r\n"
    try:
        while time.monotonic() + args.idle_every < deadline:
            idler.writer.write(b"idle IDLE\r\n")
            await idler.response()  # "+ idling"
            # Paced on purpose: a wake-up is measured from a quiet IDLE, not back to back.
            await asyncio.sleep(args.idle_every)
            started = time.perf_counter()
            append = asyncio.create_task(appender.append(b"INBOX", message))
            exists = await _await_exists(idler, exists)
            tally.latencies["wake"].append(time.perf_counter() - started)
            idler.writer.write(b"DONE\r\n")
            while not (await idler.response()).startswith(b"idle "):
                pass
            if not (await append).startswith(b"OK"):
                tally.failures["wake: APPEND refused"] += 1
    except (OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
        tally.failures[f"idle lost: {type(exc).__name__}"] += 1
        return
    await idler.close()
    await appender.close()


async def open_session(args: argparse.Namespace, context: ssl.SSLContext) -> Client:
    """A logged-in client with INBOX selected (not timed)."""
    client = await connect(args, context)
    client.exists = await _select_count(client)
    return client


async def _select_count(client: Client) -> int:
    client.counter += 1
    tag = b"t%d " % client.counter
    client.writer.write(tag + b"SELECT INBOX\r\n")
    count = 0
    while not (line := await client.response()).startswith(tag):
        if match := _EXISTS.match(line):
            count = int(match.group(1))
    return count


async def _await_exists(client: Client, known: int) -> int:
    while True:
        line = await client.response()
        if (match := _EXISTS.match(line)) and int(match.group(1)) > known:
            return int(match.group(1))


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of ``values`` (0.0 when empty)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


async def run_load(args: argparse.Namespace) -> dict[str, object]:
    """Run every client and the IDLE pair; the summary as a JSON-ready dict."""
    context = ssl.create_default_context(cafile=args.cafile)
    context.check_hostname = bool(args.tls_name)
    tally = Tally()
    # Log in and select first: the clock measures commands, not LOGIN's password hashing.
    sessions = [open_session(args, context) for _ in range(args.clients)]
    if args.idle_every > 0:
        sessions += [open_session(args, context), open_session(args, context)]
    results = await asyncio.gather(*sessions, return_exceptions=True)
    clients = [r for r in results if isinstance(r, Client)]
    for failed in (r for r in results if isinstance(r, BaseException)):
        tally.failures[f"connect: {type(failed).__name__}: {failed}"[:120]] += 1
    usage_before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.monotonic()
    deadline = started + args.seconds
    pair = clients[args.clients :] if args.idle_every > 0 and len(clients) == len(results) else []
    workers = clients[: args.clients] if not pair else clients[:-2]
    jobs = [worker(c, n, args, tally, deadline) for n, c in enumerate(workers)]
    if len(pair) == 2:
        jobs.append(idle_pair(pair[0], pair[1], args, tally, deadline))
    await asyncio.gather(*jobs)
    elapsed = time.monotonic() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (usage.ru_utime - usage_before.ru_utime) + (usage.ru_stime - usage_before.ru_stime)
    kinds = {
        kind: {
            "ops": len(values),
            "ops_per_s": len(values) / elapsed if elapsed else 0.0,
            "p50_ms": percentile(values, 0.50) * 1000,
            "p99_ms": percentile(values, 0.99) * 1000,
        }
        for kind, values in tally.latencies.items()
    }
    total = sum(len(v) for k, v in tally.latencies.items() if k != "wake")
    return {
        "seconds": elapsed,
        "ops": total,
        "ops_per_s": total / elapsed if elapsed else 0.0,
        "kinds": kinds,
        "failures": dict(tally.failures),
        "loadgen_cpu_s": cpu,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (see ``--help``)."""
    parser = argparse.ArgumentParser(description="IMAP load generator for bench/imap.py")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True, help="the IMAPS port")
    parser.add_argument("--tls-name", default="", help="name to check in the certificate")
    parser.add_argument("--cafile", required=True, help="certificate(s) to trust")
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--count", type=int, required=True, help="messages in INBOX")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the run")
    parser.add_argument("--idle-every", type=float, default=0.25, help="0 disables IDLE")
    parser.add_argument("--seed", type=int, default=1)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the load and print its JSON summary."""
    args = parse_args(argv)
    try:
        uvloop = importlib.import_module("uvloop")
        runner = uvloop.run
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        runner = asyncio.run
    result = runner(run_load(args))
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
