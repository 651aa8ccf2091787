"""Outbound delivery benchmark: messages delivered per second by courriel and by Postfix.

M messages of S bytes, one recipient each, spread over D destination domains (by default
one run with 1 domain and one with 50), are delivered to SMTP sinks on loopback, in one run:

* ``courriel``: the messages are queued directly (blob store + ``delivery.queue``) in a
  fresh data folder, then ``courriel serve --roles delivery`` starts and finds the sinks
  through a loopback DNS server (``courriel.testing.dns``): domain ``dN.test`` has MX
  ``mx.dN.test`` at ``127.0.0.(N+2)``; ``delivery.mx_port`` is the sinks' port.
* ``postfix``: a private Postfix (``_postfix_relay.py``) gets the same messages over SMTP
  while its queue is held, then the queue is released and Postfix relays everything to
  the same sinks (by IP literal, no DNS).

The sinks (``_delivery_sink.py``, a process of their own) count distinct
(Message-ID, recipient) pairs and note when the first and the last message arrived. The
table gives, per server and domain count: messages delivered, duplicates, **seconds**
from the first to the last message at the sinks, **msg/s** (messages / seconds), **wall**
seconds from the start (courriel: process launch; Postfix: queue release) until the
queue is empty, and memory: courriel's VmHWM (peak RSS of its one process), and for both
the peak proportional set size (PSS, shared pages counted once) sampled twice a second
over the whole process tree (Postfix runs one process per delivery agent). DKIM
signatures per second are timed in-process on one message (RSA-2048 + Ed25519).

Usage::

    .venv/bin/python bench/delivery.py --messages 200 --domains 1,5    # smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import platform
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from _args import median_rows, positive, server_list
from _delivery_sink import host_addresses
from _delivery_work import DkimRate, domain_names, enqueue_all, inject_smtp, time_dkim
from _postfix_relay import PostfixRelay, tree_pss_kib
from _servers import BENCH_DIR, free_port
from postfix_sink import available as postfix_available
from sqlalchemy import func, select

from courriel.errors import CourrielError, ListenerError
from courriel.storage.db import Database, sqlite_url_for
from courriel.storage.models import queue_recipients
from courriel.testing.dns import DnsServer

__all__ = ["SERVERS", "Row", "main"]

SERVERS = ("courriel", "postfix")
_POLL = 0.2  # seconds between looks at the sinks' counters
_LISTEN_KEYS = ("smtp", "submission", "submissions", "pop3", "pop3s")


@dataclass(frozen=True, slots=True, kw_only=True)
class Row:
    """One run of one server: a line of the table."""

    server: str
    domains: int
    messages: int = 0  # messages queued
    delivered: int = 0  # distinct (Message-ID, recipient) pairs at the sinks
    duplicates: int = 0
    seconds: float = 0.0  # first to last message at the sinks
    wall: float = 0.0  # start until the queue is empty
    first_at: float = 0.0  # start until the first message reached a sink
    rss_mib: float = 0.0  # courriel: VmHWM; Postfix: not measured (many processes)
    pss_mib: float = 0.0  # peak PSS of the process tree, sampled
    note: str = ""  # why the run was skipped or failed

    @property
    def msg_per_s(self) -> float:
        """Messages delivered per second at the sinks."""
        return self.delivered / self.seconds if self.seconds > 0 else 0.0

    @property
    def failed(self) -> bool:
        """The run could not finish, or lost or duplicated mail."""
        return self.note.startswith("could not") or (
            not self.note and (self.delivered < self.messages or self.duplicates > 0)
        )


def _counts(value: str) -> tuple[int, ...]:
    try:
        counts = tuple(int(v) for v in value.split(",") if v.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError("comma-separated numbers") from exc
    if not counts or any(not 1 <= c <= 250 for c in counts):
        raise argparse.ArgumentTypeError("each between 1 and 250")
    return counts


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (see ``--help``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--messages", type=positive, default=50_000, help="messages per run")
    parser.add_argument("--domains", type=_counts, default=(1, 50), help="e.g. 1,50")
    parser.add_argument("--size", type=positive, default=5000, help="bytes per message")
    parser.add_argument("--rounds", type=positive, default=1, help="runs per server, interleaved")
    parser.add_argument(
        "--only", type=server_list(SERVERS), default=SERVERS, help="courriel,postfix"
    )
    parser.add_argument("--database-url", default=None, help="courriel's database.url")
    parser.add_argument("--courriel", type=Path, default=Path(sys.executable).parent / "courriel")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--run-timeout", type=positive, default=1800, help="seconds per run")
    return parser.parse_args(argv)


@asynccontextmanager
async def _process(
    argv: list[str], log: Path, marker: str, timeout: float
) -> AsyncIterator[tuple[subprocess.Popen[bytes], str]]:
    """Run ``argv`` (output to ``log``) until the block ends; yield it and its ready line."""
    with log.open("ab") as out:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True
        )
    try:
        yield proc, await _ready_line(proc, log, marker, timeout)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(proc.wait, 30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


async def _ready_line(proc: subprocess.Popen[bytes], log: Path, marker: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith(marker):
                return line
        await asyncio.sleep(0.05)  # bounded by the deadline; the child only writes a file
    raise ListenerError(f"{log.stem} did not print {marker!r}; see {log}")


@asynccontextmanager
async def _sinks(domains: int, folder: Path) -> AsyncIterator[tuple[int, int]]:
    """Start the sink process; yield its SMTP port and its control port."""
    argv = [sys.executable, str(BENCH_DIR / "_delivery_sink.py"), "--hosts", str(domains)]
    async with _process(argv, folder / "sink.log", "ready", 60) as (_proc, line):
        _word, port, control = line.split()
        yield int(port), int(control)


async def sink_stats(control: int) -> dict[str, float]:
    """The sinks' counters (see ``_delivery_sink.SinkStats.as_json``)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", control)
    try:
        data: dict[str, float] = json.loads(await asyncio.wait_for(reader.readline(), 30))
    finally:
        writer.close()
    return data


class _Peak:
    """Samples a process tree's PSS every half second while the block runs."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.kib = 0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            self.kib = max(self.kib, await asyncio.to_thread(tree_pss_kib, self.pid))
            await asyncio.sleep(0.5)

    def __enter__(self) -> _Peak:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()


async def _until_delivered(
    control: int, messages: int, alive: Callable[[], bool]
) -> dict[str, float]:
    while True:
        stats = await sink_stats(control)
        if stats["distinct"] >= messages:
            return stats
        if not alive():
            raise ListenerError(f"the server stopped after {stats['distinct']:.0f} messages")
        await asyncio.sleep(_POLL)


def _zone(domains: int) -> dict[tuple[str, str], list[str]]:
    zone: dict[tuple[str, str], list[str]] = {}
    for name, address in zip(domain_names(domains), host_addresses(domains), strict=True):
        zone[(name, "MX")] = [f"10 mx.{name}."]
        zone[(f"mx.{name}", "A")] = [address]
    return zone


def _overrides(args: argparse.Namespace, extra: dict[str, str]) -> dict[str, str]:
    settings = {f"listen.{key}": "" for key in _LISTEN_KEYS}
    settings["server.hostname"] = "courriel.bench.localhost"
    if args.database_url:
        settings["database.url"] = args.database_url
    return {**settings, **extra}


async def _queue_empty(url: str) -> None:
    db = await Database.open(url)
    try:
        while True:
            async with db.read() as conn:
                left = await conn.scalar(select(func.count()).select_from(queue_recipients))
            if not left:
                return
            await asyncio.sleep(_POLL)
    finally:
        await db.close()


def _vmhwm_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text(encoding="ascii").splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def run_courriel(args: argparse.Namespace, folder: Path, domains: int) -> Row:
    """Queue the load in a fresh data folder, then deliver it with ``courriel serve``."""
    data_dir = folder / "courriel-data"
    async with DnsServer(_zone(domains)) as dns_port, _sinks(domains, folder) as (port, ctl):
        settings = _overrides(
            args,
            {
                "dns.nameservers": f"127.0.0.1:{dns_port}",
                "dns.timeout": "5s",
                "delivery.mx_port": str(port),
            },
        )
        await enqueue_all(
            data_dir, settings, messages=args.messages, domains=domains, size=args.size
        )
        argv = [str(args.courriel), "--data-dir", str(data_dir)]
        for key, value in settings.items():
            argv += ["--set", f"{key}={value}"]
        started = time.monotonic()
        serve = [*argv, "serve", "--roles", "delivery"]
        async with _process(serve, folder / "courriel.log", "courriel: ready", 120) as (proc, _):
            with _Peak(proc.pid) as peak:
                await _until_delivered(ctl, args.messages, lambda: proc.poll() is None)
                await _queue_empty(args.database_url or sqlite_url_for(data_dir))
            ended = time.monotonic()
            rss = _vmhwm_mib(proc.pid)
        # Read last: a duplicate sent after the queue emptied would still show.
        stats = await sink_stats(ctl)
    row = _row("courriel", domains, args.messages, stats, (started, ended), peak.kib / 1024)
    return dataclasses.replace(row, rss_mib=rss)


def _row(
    server: str,
    domains: int,
    messages: int,
    stats: dict[str, float],
    span: tuple[float, float],
    pss: float,
) -> Row:
    started, ended = span
    return Row(
        server=server,
        domains=domains,
        messages=messages,
        delivered=int(stats["distinct"]),
        duplicates=int(stats["duplicates"]),
        seconds=stats["last"] - stats["first"],
        wall=ended - started,
        first_at=stats["first"] - started,
        pss_mib=pss,
    )


async def run_postfix(args: argparse.Namespace, folder: Path, domains: int) -> Row:
    """Inject the load into a held private Postfix, release it, time the relaying."""
    async with _sinks(domains, folder) as (port, ctl):
        routes = list(zip(domain_names(domains), host_addresses(domains), strict=True))
        relay = PostfixRelay(folder / "postfix", free_port(), routes=routes, sink_port=port)
        with relay:
            await inject_smtp(relay.port, messages=args.messages, domains=domains, size=args.size)
            held = relay.held()
            if held != args.messages:
                raise ListenerError(f"postfix holds {held} of {args.messages} messages")
            started = time.monotonic()
            with _Peak(relay.master_pid()) as peak:
                await asyncio.to_thread(relay.release)
                await _until_delivered(ctl, args.messages, lambda: True)
                while relay.queued():
                    await asyncio.sleep(_POLL)
            ended = time.monotonic()
        stats = await sink_stats(ctl)
    return _row("postfix", domains, args.messages, stats, (started, ended), peak.kib / 1024)


async def run_one(args: argparse.Namespace, tmp: Path, name: str, domains: int, rnd: int) -> Row:
    """One server, one domain count; a run that cannot finish gives a note, not a crash."""
    folder = tmp / f"{name}-{domains}-{rnd}"
    folder.mkdir(mode=0o755)
    if name == "postfix" and not postfix_available():
        return Row(
            server=name, domains=domains, note="skipped: postfix not installed (or not root)"
        )
    if name == "courriel" and not args.courriel.exists():
        return Row(server=name, domains=domains, note=f"skipped: {args.courriel} not found")
    runner = run_courriel if name == "courriel" else run_postfix
    try:
        async with asyncio.timeout(args.run_timeout):
            return await runner(args, folder, domains)
    except (CourrielError, OSError, subprocess.SubprocessError, TimeoutError, ValueError) as exc:
        reason = str(exc) or type(exc).__name__
        return Row(server=name, domains=domains, note=f"could not run: {reason}")


def _lines(rows: list[Row]) -> Iterator[str]:
    yield (
        f"{'server':<9} {'domains':>7} {'delivered':>13} {'dup':>4} {'seconds':>8}"
        f" {'msg/s':>7} {'1st at':>7} {'wall s':>7} {'RSS MiB':>8} {'PSS MiB':>8}"
    )
    for row in rows:
        if row.note:
            yield f"{row.server:<9} {row.domains:>7} {row.note}"
            continue
        done = f"{row.delivered}/{row.messages}"
        rss = f"{row.rss_mib:.0f}" if row.rss_mib else "-"
        yield (
            f"{row.server:<9} {row.domains:>7} {done:>13} {row.duplicates:>4} {row.seconds:>8.2f}"
            f" {row.msg_per_s:>7.0f} {row.first_at:>7.2f} {row.wall:>7.2f} {rss:>8}"
            f" {row.pss_mib:>8.0f}"
        )


def medians(rows: list[Row]) -> list[Row]:
    """One row per (server, domains): the run with the median msg/s."""
    return median_rows(rows, group=lambda r: (r.server, r.domains), score=lambda r: r.msg_per_s)


def report(
    rows: list[Row], dkim: DkimRate | None, args: argparse.Namespace, out: Callable[[str], None]
) -> None:
    """Print the table, the medians, the ratios, DKIM, the load and the command line."""
    for line in _lines(rows):
        out(line)
    middle = medians(rows)
    if len(middle) < len(rows):
        out("median run per server and domain count:")
        for line in _lines(middle):
            out(line)
    for domains in args.domains:
        ours = [r for r in middle if r.server == "courriel" and r.domains == domains]
        theirs = [r for r in middle if r.server == "postfix" and r.domains == domains]
        if ours and theirs and ours[0].msg_per_s and theirs[0].msg_per_s:
            ratio = ours[0].msg_per_s / theirs[0].msg_per_s
            out(f"courriel / postfix, {domains} domain(s): x{ratio:.2f} msg/s")
    if dkim is not None:
        out(
            f"DKIM ({' + '.join(dkim.selectors)}): {dkim.signatures_per_s:,.0f} signatures/s,"
            f" {dkim.messages_per_s:,.0f} messages/s signed with every key,"
            f" {dkim.hashed_per_s:,.0f} messages/s with the body hash"
        )
    out("")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    out(
        f"load: {args.messages} messages of {args.size} bytes, one recipient each, to"
        f" {'/'.join(map(str, args.domains))} domains, {args.rounds} round(s);"
        f" python {platform.python_version()}, {platform.machine()}, {cores} cores"
    )
    out("command: " + shlex.join(sys.orig_argv))


async def run_all(args: argparse.Namespace, tmp: Path) -> tuple[list[Row], DkimRate | None]:
    """Time DKIM, then every round of every domain count and server, interleaved."""
    dkim: DkimRate | None = None
    if "courriel" in args.only:
        scratch = tmp / "dkim"
        scratch.mkdir()
        # Always on SQLite in a scratch folder: the keys are made and read once.
        sqlite = {k: v for k, v in _overrides(args, {}).items() if k != "database.url"}
        dkim = await time_dkim(scratch / "data", sqlite, size=args.size)
    rows: list[Row] = []
    for rnd in range(args.rounds):
        for domains in args.domains:
            for name in args.only:
                print(f"running {name}, {domains} domain(s), round {rnd + 1} ...", file=sys.stderr)
                rows.append(await run_one(args, tmp, name, domains, rnd))
    return rows, dkim


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit status 1 when a run failed, lost or duplicated mail."""
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)  # unwinds through every context manager
    tmp = Path(tempfile.mkdtemp(prefix="courriel-delivery-"))
    tmp.chmod(0o755)  # Postfix's daemons reach their files by absolute path as other users
    try:
        rows, dkim = asyncio.run(run_all(args, tmp))
    finally:
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    report(rows, dkim, args, print)
    return 1 if any(row.failed for row in rows) else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
