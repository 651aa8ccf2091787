"""Campaign benchmark: a personalised, DKIM-signed campaign delivered to sinks on loopback.

Seeds a fresh data folder (``_campaign_seed.py``): N contacts (default 100,000) subscribed
to one list at domains ``d0.test .. dK.test``, a shop of 2,000 products with 5,000 orders
so that ``recommendations("best_sellers", 3)`` renders three products, an MJML template
with personalisation, a sending domain ``shop.test`` with DKIM keys (RSA-2048 + Ed25519),
and the campaign, scheduled now. Then ``courriel serve --roles delivery`` (the campaign
sender and the queue worker it feeds) starts against it, with ``dns.nameservers`` at a
loopback DNS server whose MX records point to ``bench/_delivery_sink.py`` on 127.0.0.x.

Measured until the sinks hold every message and the queue is empty:

* **msg/s**: recipients / seconds from the first copy rendered (the campaign's
  ``started_at``) to the last message at the sinks (end to end: freeze, render,
  css-inline, DKIM, queue, delivery);
* **wall**: process launch until the queue is empty;
* peak **RSS** (VmHWM) and peak **PSS** (sampled twice a second) of the serve process;
* **dup**: (Message-ID, recipient) pairs the sinks got twice (must be 0).

``--profile`` runs the serve process under cProfile (``python -m cProfile``) and prints
the top functions by cumulative and by own time once it exits: use a small N.

Usage::

    .venv/bin/python bench/campaign.py --recipients 2000                  # smoke run
    .venv/bin/python bench/campaign.py                                     # 100,000
    .venv/bin/python bench/campaign.py --recipients 1000000
    .venv/bin/python bench/campaign.py --database-url postgresql://postgres@127.0.0.1:5432/x
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import platform
import pstats
import shlex
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from _args import positive
from _campaign_seed import seed
from delivery import _Peak, _process, _sinks, _until_delivered, _vmhwm_mib, _zone, sink_stats
from sqlalchemy import func, select

from courriel.storage.db import Database, sqlite_url_for
from courriel.storage.models import queue_recipients
from courriel.storage.models.campaigns import campaign_recipients, campaigns
from courriel.testing.dns import DnsServer

__all__ = ["Row", "main"]

_LISTEN_KEYS = ("smtp", "submission", "submissions", "pop3", "pop3s", "imap", "imaps", "http")


@dataclass(frozen=True, slots=True, kw_only=True)
class Row:
    """One run: a line of the table."""

    recipients: int
    database: str
    delivered: int = 0
    duplicates: int = 0
    sent_rows: int = 0  # campaign_recipients rows marked sent
    seed_s: float = 0.0
    seconds: float = 0.0  # first copy rendered (started_at) -> last message at the sinks
    wall: float = 0.0  # serve launch -> queue empty
    rss_mib: float = 0.0
    pss_mib: float = 0.0
    cpu_s: float = 0.0  # user + system CPU seconds of the serve process

    @property
    def msg_per_s(self) -> float:
        """Messages at the sinks per second, end to end."""
        return self.delivered / self.seconds if self.seconds > 0 else 0.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (see ``--help``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--recipients", type=positive, default=100_000)
    parser.add_argument("--domains", type=positive, default=20, help="destination domains")
    parser.add_argument("--database-url", default=None, help="courriel's database.url")
    parser.add_argument("--courriel", type=Path, default=Path(sys.executable).parent / "courriel")
    parser.add_argument("--set", action="append", default=[], help="extra KEY=VALUE for serve")
    parser.add_argument("--profile", action="store_true", help="cProfile the serve process")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--run-timeout", type=positive, default=3600, help="seconds")
    return parser.parse_args(argv)


def _settings(args: argparse.Namespace, dns_port: int, sink_port: int) -> dict[str, str]:
    settings = {f"listen.{key}": "" for key in _LISTEN_KEYS}
    settings |= {
        "server.hostname": "courriel.bench.localhost",
        "dns.nameservers": f"127.0.0.1:{dns_port}",
        "dns.timeout": "5s",
        "delivery.mx_port": str(sink_port),
        "http.public_url": "https://mail.shop.example",
        "shop.name": "Bench Shop",
        "shop.address": "1 rue de la Paix, 75002 Paris, France",
        "log.level": "warning",
    }
    if args.database_url:
        settings["database.url"] = args.database_url
    for item in args.set:
        key, _, value = item.partition("=")
        settings[key] = value
    return settings


async def _started_at(url: str, campaign_id: int) -> float:
    """The campaign's started_at as a wall-clock timestamp."""
    db = await Database.open(url)
    try:
        async with db.read() as conn:
            started = await conn.scalar(
                select(campaigns.c.started_at).where(campaigns.c.id == campaign_id)
            )
            sent = await conn.scalar(
                select(func.count())
                .select_from(campaign_recipients)
                .where(
                    campaign_recipients.c.campaign_id == campaign_id,
                    campaign_recipients.c.status == "sent",
                )
            )
    finally:
        await db.close()
    return (started.timestamp() if started else 0.0), int(sent or 0)  # type: ignore[return-value]


async def _queue_empty(url: str) -> None:
    db = await Database.open(url)
    try:
        while True:
            async with db.read() as conn:
                left = await conn.scalar(select(func.count()).select_from(queue_recipients))
            if not left:
                return
            await asyncio.sleep(0.2)
    finally:
        await db.close()


def _cpu_seconds(pid: int) -> float:
    """utime + stime of a live process (proc(5): fields 14 and 15, in clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _serve_argv(args: argparse.Namespace, data_dir: Path, settings: dict[str, str]) -> list[str]:
    base = [str(args.courriel)]
    if args.profile:
        base = [
            sys.executable,
            "-m",
            "cProfile",
            "-o",
            str(data_dir.parent / "serve.prof"),
            "-m",
            "courriel",
        ]
    argv = [*base, "--data-dir", str(data_dir)]
    for key, value in settings.items():
        argv += ["--set", f"{key}={value}"]
    return [*argv, "serve", "--roles", "delivery"]


async def run(args: argparse.Namespace, folder: Path) -> Row:
    """Seed, serve, wait for the sinks, measure."""
    data_dir = folder / "data"
    url = args.database_url or sqlite_url_for(data_dir)
    n = args.recipients
    async with (
        DnsServer(_zone(args.domains)) as dns_port,
        _sinks(args.domains, folder) as (
            port,
            ctl,
        ),
    ):
        settings = _settings(args, dns_port, port)
        t0 = time.monotonic()
        campaign_id = await seed(data_dir, settings, count=n, domains=args.domains)
        seed_s = time.monotonic() - t0
        print(f"seeded {n} recipients in {seed_s:.1f} s", file=sys.stderr)
        # Wall clock to monotonic: the sinks stamp with CLOCK_MONOTONIC.
        offset = time.time() - time.monotonic()
        started = time.monotonic()
        serve = _serve_argv(args, data_dir, settings)
        async with _process(serve, folder / "courriel.log", "courriel: ready", 120) as (proc, _):
            with _Peak(proc.pid) as peak:
                await _until_delivered(ctl, n, lambda: proc.poll() is None)
                await _queue_empty(url)
            ended = time.monotonic()
            rss = _vmhwm_mib(proc.pid)
            cpu = _cpu_seconds(proc.pid)
        stats = await sink_stats(ctl)
    began, sent = await _started_at(url, campaign_id)
    return Row(
        recipients=n,
        database="postgresql" if args.database_url else "sqlite",
        delivered=int(stats["distinct"]),
        duplicates=int(stats["duplicates"]),
        sent_rows=sent,
        seed_s=seed_s,
        seconds=stats["last"] - (began - offset),
        wall=ended - started,
        rss_mib=rss,
        pss_mib=peak.kib / 1024,
        cpu_s=cpu,
    )


def _lines(row: Row) -> Iterator[str]:
    yield (
        f"{'db':<10} {'recipients':>10} {'delivered':>10} {'sent rows':>10} {'dup':>4}"
        f" {'seed s':>7} {'seconds':>8} {'msg/s':>7} {'wall s':>7} {'RSS MiB':>8} {'PSS MiB':>8}"
        f" {'CPU s':>6}"
    )
    yield (
        f"{row.database:<10} {row.recipients:>10} {row.delivered:>10} {row.sent_rows:>10}"
        f" {row.duplicates:>4} {row.seed_s:>7.1f} {row.seconds:>8.1f} {row.msg_per_s:>7.0f}"
        f" {row.wall:>7.1f} {row.rss_mib:>8.0f} {row.pss_mib:>8.0f} {row.cpu_s:>6.1f}"
    )


def report(row: Row, args: argparse.Namespace, out: Callable[[str], None]) -> None:
    """Print the table, the machine and the command line."""
    for line in _lines(row):
        out(line)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    out(f"python {platform.python_version()}, {platform.machine()}, {cores} cores; load {load}")
    out("command: " + shlex.join(sys.orig_argv))


def _print_profile(path: Path, out: Callable[[str], None]) -> None:
    if not path.exists():
        out("no profile written (the serve process did not exit cleanly)")
        return
    for order in ("cumulative", "tottime"):
        out(f"--- serve profile, top 30 by {order} ---")
        stream = io.StringIO()
        pstats.Stats(str(path), stream=stream).sort_stats(order).print_stats(30)
        for line in stream.getvalue().splitlines():
            if line.strip():
                out(line)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def main(argv: list[str] | None = None) -> int:
    """Run once; exit 1 when mail was lost or duplicated."""
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)  # unwinds through every context manager
    tmp = Path(tempfile.mkdtemp(prefix="courriel-campaign-"))
    try:
        row = asyncio.run(asyncio.wait_for(run(args, tmp), args.run_timeout))
        report(row, args, print)
        if args.profile:
            _print_profile(tmp / "serve.prof", print)
    finally:
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    lost = row.delivered < row.recipients or row.duplicates > 0
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main())
