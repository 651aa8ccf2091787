"""SMTP receive benchmark: durable messages per second for courriel, aiosmtpd and Postfix.

N concurrent clients each send M messages of S bytes to ``user@bench.test``, K messages per
SMTP connection, to each server in turn, in one run:

* ``courriel``: ``courriel serve`` from this venv (SQLite in a temporary data folder unless
  ``--database-url`` is given); 250 comes after the row and blob are committed and fsynced.
* ``aiosmtpd``: the baseline, an aiosmtpd server whose handler writes each message to its own
  file (tmp, write, fsync, rename) before 250.
* ``postfix``: a private instance of Debian's Postfix, if installed; 250 comes after its
  queue file is fsynced.

The load generator (``_smtpload.py``) runs in a separate process and is the same for all
three. It prints one table: server, messages delivered, seconds, msg/s, p50 and p99 latency
(from the first byte of MAIL to the 250 after the end of data), failures, and the exact
command line. Everything listens on 127.0.0.1 only; every process is stopped at the end.

Usage::

    .venv/bin/python bench/smtp_receive.py --clients 4 --messages 10   # smoke run
"""

from __future__ import annotations

import argparse
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
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path

from _args import median_rows, positive, server_list
from _servers import BENCH_DIR, aiosmtpd_server, courriel_server, postfix_server
from postfix_sink import available as postfix_available

from courriel.errors import CourrielError

__all__ = ["SERVERS", "Row", "main"]

SERVERS = ("courriel", "aiosmtpd", "postfix")


@dataclass(frozen=True, slots=True, kw_only=True)
class Row:
    """One server's line of the result table."""

    server: str
    attempted: int = 0
    ok: int = 0
    seconds: float = 0.0
    msg_per_s: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    failures: dict[str, int] = field(default_factory=dict)  # reason -> messages
    note: str = ""  # why the server was skipped or could not run


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (see ``--help``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--clients", type=positive, default=20, help="concurrent clients")
    parser.add_argument("--messages", type=positive, default=100, help="messages per client")
    parser.add_argument("--size", type=positive, default=5000, help="bytes per message")
    parser.add_argument(
        "--per-connection", type=positive, default=10, help="messages per SMTP connection"
    )
    parser.add_argument(
        "--only",
        type=server_list(SERVERS),
        default=SERVERS,
        help="comma-separated: " + ",".join(SERVERS),
    )
    parser.add_argument(
        "--database-url", default=None, help="courriel's database.url (default: SQLite in TMP)"
    )
    parser.add_argument(
        "--courriel",
        type=Path,
        default=Path(sys.executable).parent / "courriel",
        help="the courriel command (default: the one beside this Python)",
    )
    parser.add_argument(
        "--rounds",
        type=positive,
        default=3,
        help="runs per server, interleaved (the disk's speed drifts; the median is compared)",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary folder (logs, data) and print it"
    )
    parser.add_argument(
        "--run-timeout", type=positive, default=1800, help="seconds allowed for one server's run"
    )
    return parser.parse_args(argv)


def _load(args: argparse.Namespace, port: int) -> Row:
    """Run the load generator against 127.0.0.1:port in its own process."""
    argv = [sys.executable, str(BENCH_DIR / "_smtpload.py"), "--port", str(port)]
    for name in ("clients", "messages", "size", "per_connection"):
        argv += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
    result = subprocess.run(
        argv, capture_output=True, text=True, timeout=args.run_timeout, check=False
    )
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no message"])[-1]
        return Row(server="", note=f"could not run: load generator failed: {last}")
    data = json.loads(result.stdout)
    return Row(
        server="",
        attempted=data["attempted"],
        ok=data["ok"],
        seconds=data["seconds"],
        msg_per_s=data["msg_per_s"],
        p50_ms=data["p50_ms"],
        p99_ms=data["p99_ms"],
        failures=data["failures"],
    )


def _server(
    name: str, args: argparse.Namespace, tmp: Path, round_no: int = 0
) -> AbstractContextManager[int] | str:
    """The server's context manager, or why it cannot run here."""
    folder = tmp / f"{name}-{round_no}"
    folder.mkdir(mode=0o755)
    if name == "courriel":
        if not args.courriel.exists():
            return f"skipped: {args.courriel} not found"
        return courriel_server(args.courriel, folder, args.database_url)
    if name == "aiosmtpd":
        return aiosmtpd_server(folder)
    if not postfix_available():
        return "skipped: /usr/sbin/postfix not installed (or not root); see bench/README.md"
    return postfix_server(folder, args.clients)


def run_one(name: str, args: argparse.Namespace, tmp: Path, round_no: int = 0) -> Row:
    """Start one server, load it, stop it; a server that fails to start gives a note."""
    server = _server(name, args, tmp, round_no)
    if isinstance(server, str):
        return Row(server=name, note=server)
    try:
        with server as port:
            row = _load(args, port)
    except (CourrielError, OSError, subprocess.SubprocessError) as exc:
        hint = "" if args.keep else " (rerun with --keep to keep the logs)"
        return Row(server=name, note=f"could not run: {exc}{hint}")
    return dataclasses.replace(row, server=name)


def _table(rows: list[Row]) -> Iterator[str]:
    yield from _lines(rows)
    middle = medians(rows)
    if len(middle) < len(rows):
        yield "median run per server:"
        yield from _lines(middle, failures=False)
    yield from _ratios(middle)


def _lines(rows: list[Row], *, failures: bool = True) -> Iterator[str]:
    yield f"{'server':<10} {'messages':>11} {'seconds':>8} {'msg/s':>8} {'p50 ms':>8} {'p99 ms':>8}"
    for row in rows:
        if row.note and not row.attempted:
            yield f"{row.server:<10} {row.note}"
            continue
        done = f"{row.ok}/{row.attempted}"
        yield (
            f"{row.server:<10} {done:>11} {row.seconds:>8.2f} {row.msg_per_s:>8.0f}"
            f" {row.p50_ms:>8.1f} {row.p99_ms:>8.1f}"
        )
    for row in rows if failures else ():
        for reason, count in row.failures.items():
            yield f"FAILED {row.server}: {count} x {reason}"


def medians(rows: list[Row]) -> list[Row]:
    """One row per server: the run with the median msg/s (rows of failed runs are kept)."""
    return median_rows(rows, group=lambda r: r.server, score=lambda r: r.msg_per_s)


def _ratios(rows: list[Row]) -> Iterator[str]:
    # The target: courriel accepts more durable messages per second than every baseline.
    ours = next((r for r in rows if r.server == "courriel" and r.msg_per_s > 0), None)
    for row in rows:
        if ours is not None and row is not ours and row.msg_per_s > 0:
            ratio = ours.msg_per_s / row.msg_per_s
            yield f"courriel / {row.server} (medians): x{ratio:.2f} msg/s"


def report(rows: list[Row], args: argparse.Namespace, out: Callable[[str], None]) -> None:
    """Print the table, the failures and the exact command line."""
    for line in _table(rows):
        out(line)
    out("")
    out(
        f"load: {args.clients} clients x {args.messages} messages of {args.size} bytes,"
        f" {args.per_connection} per connection, {args.rounds} interleaved rounds;"
        f" python {platform.python_version()}, {platform.machine()}, {_cores()} cores"
    )
    out("command: " + shlex.join(sys.orig_argv))


def _cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 0  # pragma: no cover - not Linux


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit status 1 when a server could not run or refused a message."""
    args = parse_args(argv)
    # Ctrl-C and SIGTERM both unwind through the servers' context managers, which stop them.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    rows: list[Row] = []
    tmp_dir = tempfile.mkdtemp(prefix="courriel-bench-")
    tmp = Path(tmp_dir)
    tmp.chmod(0o755)  # Postfix's daemons reach their files by absolute path as other users
    try:
        for round_no in range(args.rounds):
            for name in args.only:
                print(f"running {name} (round {round_no + 1}) ...", file=sys.stderr, flush=True)
                rows.append(run_one(name, args, tmp, round_no))
    finally:
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp_dir, ignore_errors=True)
    report(rows, args, print)
    failed = any(
        row.failures or row.ok < row.attempted or row.note.startswith("could not") for row in rows
    )
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        # Every server was stopped on the way out (context managers); no table for a partial run.
        print("interrupted", file=sys.stderr)
        sys.exit(130)
