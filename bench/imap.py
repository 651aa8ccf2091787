"""IMAP benchmark: operations per second and latency for courriel and Dovecot, in one run.

Both servers hold the same 10,000-message INBOX (``_imapseed.py``) of one account and serve
it over IMAPS on 127.0.0.1 with the same certificate. Both are started and seeded first, and
warmed with one ``FETCH 1:* (FLAGS ENVELOPE)``; then the rounds are interleaved (courriel,
Dovecot, courriel, ...) and each round runs ``_imapload.py`` in its own process: 20 clients
doing a mix of SELECT, FETCH ranges (FLAGS ENVELOPE), UID FETCH BODY.PEEK[] of one message,
UID SEARCH and UID STORE, plus one IDLE client woken by APPENDs from another.

* ``courriel``: ``courriel serve --roles imap`` from this venv (SQLite in the temporary
  data folder unless ``--database-url`` is given).
* ``dovecot``: a private Debian dovecot-imapd (``courriel.testing.dovecot``), Maildir,
  with its default settings besides the listeners and a higher per-user connection limit.

It prints per server and round: operations, ops/s, the server's CPU seconds (every process
of its session, children included) and the load generator's CPU (so that one can tell it
was not the bottleneck); then per operation kind p50/p99 latency of the median round; then
the courriel/Dovecot ratio. Every process started is stopped on exit (also Ctrl-C).

Usage::

    .venv/bin/python bench/imap.py --count 1000 --seconds 5 --rounds 1   # smoke run
    .venv/bin/python bench/imap.py                                       # 10,000 messages
"""

from __future__ import annotations

import argparse
import asyncio
import imaplib
import json
import os
import platform
import shlex
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from _args import median_rows, positive, server_list
from _imapseed import DATE, PASSWORD, USER, messages, seed_courriel
from _servers import BENCH_DIR, _start_drain, _stop, _wait_ready, free_port

from courriel.errors import CourrielError
from courriel.protocols.tls import ensure_certificate
from courriel.testing.dovecot import DovecotImap, dovecot_available

__all__ = ["SERVERS", "Row", "main"]

SERVERS = ("courriel", "dovecot")
HOSTNAME = "imap.bench.test"
KIND_ORDER = ("select", "fetch", "body", "search", "store", "wake")


@dataclass(frozen=True, slots=True, kw_only=True)
class Row:
    """One round of one server."""

    server: str
    round_no: int
    ops: int = 0
    ops_per_s: float = 0.0
    seconds: float = 0.0
    server_cpu_s: float = 0.0
    loadgen_cpu_s: float = 0.0
    kinds: dict[str, dict[str, float]] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)
    note: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Running:
    """A started server: where it listens and which process session is its."""

    server: str
    port: int
    pid: int
    cafile: Path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (see ``--help``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--clients", type=positive, default=20, help="concurrent clients")
    parser.add_argument("--count", type=positive, default=10_000, help="messages in INBOX")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of one round")
    parser.add_argument("--rounds", type=positive, default=3, help="interleaved rounds")
    parser.add_argument(
        "--idle-every", type=float, default=0.25, help="seconds between IDLE wake-ups (0: none)"
    )
    parser.add_argument(
        "--only", type=server_list(SERVERS), default=SERVERS, help="courriel,dovecot"
    )
    parser.add_argument("--database-url", default=None, help="courriel's database.url")
    parser.add_argument(
        "--courriel", type=Path, default=Path(sys.executable).parent / "courriel",
        help="the courriel command (default: the one beside this Python)",
    )  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    return parser.parse_args(argv)


def _settings(args: argparse.Namespace, imaps: int) -> dict[str, str]:
    settings = {f"listen.{key}": "" for key in ("smtp", "submission", "submissions", "pop3")}
    settings.update({"listen.pop3s": "", "listen.http": "", "server.hostname": HOSTNAME})
    settings["listen.imap"] = f"127.0.0.1:{free_port()}"
    settings["listen.imaps"] = f"127.0.0.1:{imaps}"
    if args.database_url:
        settings["database.url"] = args.database_url
    return settings


@contextmanager
def courriel_server(args: argparse.Namespace, folder: Path) -> Iterator[Running]:
    """Seed a data folder through the mail store, then run ``courriel serve --roles imap``."""
    data_dir = folder / "courriel-data"
    port = free_port()
    settings = _settings(args, port)
    asyncio.run(seed_courriel(data_dir, settings, args.count))
    argv = [str(args.courriel), "--data-dir", str(data_dir)]
    for key, value in settings.items():
        argv += ["--set", f"{key}={value}"]
    argv += ["serve", "--roles", "imap"]
    with (folder / "courriel.log").open("ab") as log:
        # A session of its own: Ctrl-C reaches only the benchmark, which stops it in order.
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log,
            start_new_session=True,
        )  # fmt: skip
        drain = None
        try:
            _wait_ready(proc, b"ready", log, 120.0)
            drain = _start_drain(proc, log)
            cafile = data_dir / "tls" / "cert.pem"
            yield Running(server="courriel", port=port, pid=proc.pid, cafile=cafile)
        finally:
            _stop(proc)
            if drain is not None:
                drain.join(10.0)


@contextmanager
def dovecot_server(args: argparse.Namespace, folder: Path) -> Iterator[Running]:
    """Run a private Dovecot with the same certificate, its Maildir seeded with the messages."""
    cert, key = ensure_certificate(folder / "dovecot-tls", HOSTNAME)
    server = DovecotImap(
        {USER: PASSWORD},
        tls_files=(cert, key),
        mail_format="maildir",
        root=folder / "dovecot",
        extra_config="service imap {\n  process_limit = 1024\n}\n",
    )
    with server:
        server.deliver_maildir(USER, messages(args.count), internal_date=DATE.timestamp())
        yield Running(server="dovecot", port=server.imaps_port, pid=server.pid, cafile=cert)


def session_cpu(leader: int) -> float:
    """CPU seconds of every process in ``leader``'s session, reaped children included."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # Fields after the command name: state ppid pgrp session ... utime(12) stime(13)
        # cutime(14) cstime(15) (proc(5), numbered from state = 1 minus 2).
        if int(fields[3]) == leader:
            total += sum(int(value) for value in fields[11:15])
    return total / tick


def warm_up(running: Running) -> None:
    """One session that reads every message's flags and envelope (both build caches)."""
    context = ssl.create_default_context(cafile=str(running.cafile))
    context.check_hostname = False
    client = imaplib.IMAP4_SSL("127.0.0.1", running.port, ssl_context=context, timeout=600)
    try:
        client.login(USER, PASSWORD)
        client.select("INBOX")
        client.fetch("1:*", "(FLAGS ENVELOPE)")
    finally:
        client.logout()


def run_round(args: argparse.Namespace, running: Running, round_no: int) -> Row:
    """Run the load generator once against a running server."""
    argv = [
        sys.executable, str(BENCH_DIR / "_imapload.py"), "--port", str(running.port),
        "--cafile", str(running.cafile), "--tls-name", HOSTNAME, "--user", USER,
        "--password", PASSWORD, "--count", str(args.count), "--clients", str(args.clients),
        "--seconds", str(args.seconds), "--idle-every", str(args.idle_every),
        "--seed", str(round_no + 1),
    ]  # fmt: skip
    before = session_cpu(running.pid)
    result = subprocess.run(
        argv, capture_output=True, text=True, timeout=args.seconds + 600, check=False
    )
    server_cpu = session_cpu(running.pid) - before
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no message"])[-1]
        return Row(server=running.server, round_no=round_no, note=f"load generator failed: {last}")
    data = json.loads(result.stdout)
    return Row(
        server=running.server,
        round_no=round_no,
        ops=data["ops"],
        ops_per_s=data["ops_per_s"],
        seconds=data["seconds"],
        server_cpu_s=server_cpu,
        loadgen_cpu_s=data["loadgen_cpu_s"],
        kinds=data["kinds"],
        failures=data["failures"],
    )


def _start(name: str, args: argparse.Namespace, tmp: Path, stack: ExitStack) -> Running | str:
    folder = tmp / name
    folder.mkdir(mode=0o755)
    print(f"seeding and starting {name} ...", file=sys.stderr, flush=True)
    try:
        if name == "courriel":
            if not args.courriel.exists():
                return f"skipped: {args.courriel} not found"
            running = stack.enter_context(courriel_server(args, folder))
        else:
            reason = dovecot_available()
            if reason:
                return f"skipped: {reason}"
            running = stack.enter_context(dovecot_server(args, folder))
        warm_up(running)
    except (CourrielError, OSError, imaplib.IMAP4.error, subprocess.SubprocessError) as exc:
        return f"could not run: {exc}"
    return running


def run_all(args: argparse.Namespace, tmp: Path) -> list[Row]:
    """Start every server, then run the interleaved rounds; a server that fails gets a note."""
    rows: list[Row] = []
    with ExitStack() as stack:
        started: list[Running] = []
        for name in args.only:
            outcome = _start(name, args, tmp, stack)
            if isinstance(outcome, str):
                rows.append(Row(server=name, round_no=0, note=outcome))
            else:
                started.append(outcome)
        for round_no in range(args.rounds):
            for running in started:
                print(f"round {round_no + 1}: {running.server} ...", file=sys.stderr, flush=True)
                rows.append(run_round(args, running, round_no))
    return rows


def medians(rows: list[Row]) -> list[Row]:
    """Per server, the round with the median ops/s."""
    return median_rows(rows, group=lambda r: r.server, score=lambda r: r.ops_per_s)


def _lines(rows: list[Row]) -> Iterator[str]:
    yield "server    round      ops    ops/s  server CPU s  loadgen CPU"
    for row in rows:
        if row.note:
            yield f"{row.server:<9} {row.round_no + 1:>5} {row.note}"
            continue
        share = row.loadgen_cpu_s / row.seconds * 100 if row.seconds else 0.0
        yield (
            f"{row.server:<9} {row.round_no + 1:>5} {row.ops:>8} {row.ops_per_s:>8.0f}"
            f" {row.server_cpu_s:>13.1f} {share:>10.0f} %"
        )
    for row in rows:
        for reason, count in row.failures.items():
            yield f"FAILED {row.server} round {row.round_no + 1}: {count} x {reason}"
    yield ""
    yield "median round per server, per operation kind:"
    yield f"{'server':<9} {'kind':<7} {'ops':>7} {'ops/s':>8} {'p50 ms':>8} {'p99 ms':>8}"
    for row in medians([r for r in rows if not r.note]):
        for kind in KIND_ORDER:
            stats = row.kinds.get(kind)
            if stats:
                yield (
                    f"{row.server:<9} {kind:<7} {stats['ops']:>7.0f} {stats['ops_per_s']:>8.1f}"
                    f" {stats['p50_ms']:>8.2f} {stats['p99_ms']:>8.2f}"
                )


def report(rows: list[Row], args: argparse.Namespace) -> None:
    """Print the tables, the ratio and the exact command line."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 0
    for line in _lines(rows):
        print(line)
    middle = {row.server: row for row in medians([r for r in rows if not r.note])}
    if "courriel" in middle and "dovecot" in middle and middle["dovecot"].ops_per_s > 0:
        ratio = middle["courriel"].ops_per_s / middle["dovecot"].ops_per_s
        print(f"courriel / dovecot (median rounds): x{ratio:.2f} ops/s")
    print()
    print(
        f"load: {args.clients} clients + 1 IDLE pair, {args.count} messages, {args.seconds:g} s"
        f" per round, {args.rounds} interleaved rounds; python {platform.python_version()},"
        f" {platform.machine()}, {cores} cores; loadgen CPU is % of one core"
    )
    print("command: " + shlex.join(sys.orig_argv))


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit status 1 when a server could not run or an operation failed."""
    args = parse_args(argv)
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    tmp = Path(tempfile.mkdtemp(prefix="courriel-bench-imap-"))
    tmp.chmod(0o755)  # Dovecot's processes reach their files by path as other users
    try:
        rows = run_all(args, tmp)
    finally:
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    report(rows, args)
    failed = any(row.failures or row.note.startswith(("could not", "load")) for row in rows)
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
