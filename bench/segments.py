"""Segment counts on a big shop (1M contacts, 3M orders, 10M events), SQLite and PostgreSQL.

Seeds both databases with the same deterministic data (random.Random(seed)) in one pass —
PostgreSQL with COPY (asyncpg copy_records_to_table), SQLite with executemany in big
transactions, secondary indexes dropped during the load and rebuilt after it — runs
ANALYZE, then times 5 representative segment counts through the product code
(``courriel.marketing.segments.service.count``), median of ``--runs`` runs each, and checks
that both databases give the same count. ``--scale 0.01`` makes a quick run.

    .venv/bin/python bench/segments.py --scale 0.01
    .venv/bin/python bench/segments.py                      # the recorded run
    .venv/bin/python bench/segments.py --reuse              # count again, no seeding
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg
from _segments_csv import time_import, write_csv
from _segments_seed import NOW, Generator, PostgresLoader, SqliteLoader
from sqlalchemy.engine import make_url

from courriel.marketing.segments import parse_segment
from courriel.marketing.segments.service import count
from courriel.storage.db import Database

SEGMENTS: dict[str, dict[str, Any]] = {
    "1 subscribed VIPs in FR/DE": {
        "kind": "all",
        "conditions": [
            {"kind": "consent", "channel": "email", "status": ["subscribed"]},
            {"kind": "location", "field": "country", "op": "in", "value": ["FR", "DE"]},
            {"kind": "attribute", "key": "vip", "op": "eq", "value": True},
        ],
    },
    "2 big spenders, lapsed 180 d": {
        "kind": "all",
        "conditions": [
            {"kind": "order", "metric": "total_spent", "op": "gt", "value": 500},
            {
                "kind": "order",
                "metric": "last_order_date",
                "op": "more_than_days_ago",
                "value": 180,
            },
        ],
    },
    "3 viewed ≥3 in 30 d, no order in 30 d": {
        "kind": "all",
        "conditions": [
            {
                "kind": "event",
                "name": "Viewed Product",
                "op": "at_least",
                "count": 3,
                "within_days": 30,
            },
            {"kind": "order", "metric": "count", "op": "eq", "value": 0, "within_days": 30},
        ],
    },
    "4 bought cat-3 in 90 d, subscribed": {
        "kind": "all",
        "conditions": [
            {"kind": "bought", "category": "cat-3", "within_days": 90},
            {"kind": "consent", "channel": "email", "status": ["subscribed"]},
        ],
    },
    "5 engaged 30 d or tagged vip, not unsubscribed": {
        "kind": "all",
        "conditions": [
            {
                "kind": "any",
                "conditions": [
                    {"kind": "engagement", "action": "opened", "within_days": 30},
                    {"kind": "engagement", "action": "clicked", "within_days": 90},
                    {"kind": "tag", "tag": "vip"},
                ],
            },
            {
                "kind": "not",
                "condition": {"kind": "consent", "channel": "email", "status": ["unsubscribed"]},
            },
        ],
    },
}

# -- the run -----------------------------------------------------------------------------


async def _fresh_pg(admin_url: str, name: str) -> str:
    admin = make_url(admin_url).set(drivername="postgresql")
    conn = await asyncpg.connect(admin.render_as_string(hide_password=False))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return admin.set(database=name).render_as_string(hide_password=False)


async def _migrated(url: str) -> None:
    db = await Database.open(url)
    try:
        await db.upgrade()
    finally:
        await db.close()


async def seed(args: argparse.Namespace, pg_url: str | None) -> dict[str, float]:
    generator = Generator(args.seed, args.scale)
    sqlite_loader: SqliteLoader | None = None
    pg_loader: PostgresLoader | None = None
    pg_conn = None
    if "sqlite" in args.databases:
        args.sqlite_path.unlink(missing_ok=True)
        for suffix in ("-wal", "-shm"):
            Path(f"{args.sqlite_path}{suffix}").unlink(missing_ok=True)
        await _migrated(f"sqlite:///{args.sqlite_path}")
        sqlite_loader = SqliteLoader(args.sqlite_path)
        sqlite_loader.categories(generator.products)
    if pg_url is not None:
        await _migrated(pg_url)
        pg_conn = await asyncpg.connect(
            make_url(pg_url).set(drivername="postgresql").render_as_string(hide_password=False)
        )
        pg_loader = PostgresLoader(pg_conn)
        await pg_loader.start()
        await pg_loader.categories(generator.products)
    spent = {"generate": 0.0, "sqlite": 0.0, "postgresql": 0.0}
    started = time.perf_counter()
    for chunk in generator.chunks():
        spent["generate"] += time.perf_counter() - started
        jobs = []
        if sqlite_loader is not None:
            jobs.append(_timed(spent, "sqlite", asyncio.to_thread(sqlite_loader.load, chunk)))
        if pg_loader is not None:
            jobs.append(_timed(spent, "postgresql", pg_loader.load(chunk)))
        await asyncio.gather(*jobs)
        started = time.perf_counter()
    finish = []
    if sqlite_loader is not None:
        finish.append(
            _timed(spent, "sqlite index+analyze", asyncio.to_thread(sqlite_loader.finish))
        )
    if pg_loader is not None:
        finish.append(_timed(spent, "postgresql index+analyze", pg_loader.finish()))
    await asyncio.gather(*finish)
    if pg_conn is not None:
        await pg_conn.close()
    print(
        f"seeded {generator.contacts:,} contacts, {generator.order_id:,} orders, "
        f"{generator.line_id:,} order lines, {generator.event_id:,} events",
        flush=True,
    )
    return spent


async def _timed(spent: dict[str, float], key: str, work: Any) -> None:
    start = time.perf_counter()
    await work
    spent[key] = spent.get(key, 0.0) + time.perf_counter() - start


async def measure(url: str, runs: int) -> dict[str, tuple[int, float]]:
    db = await Database.open(url)
    results = {}
    try:
        for label, definition in SEGMENTS.items():
            node = parse_segment(definition)
            timings = []
            members = 0
            for _ in range(runs):
                start = time.perf_counter()
                members = await count(db, node, now=NOW)
                timings.append((time.perf_counter() - start) * 1000)
            results[label] = (members, statistics.median(timings))
    finally:
        await db.close()
    return results


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--scale", type=float, default=1.0, help="1.0 = 1M contacts (default)")
    parser.add_argument("--seed", type=int, default=20261127)
    parser.add_argument("--runs", type=int, default=5, help="timed runs per count (median)")
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--sqlite-path", type=Path, default=Path("/tmp/courriel-bench-segments.db"))
    parser.add_argument(
        "--postgres-url",
        default="postgresql://postgres@127.0.0.1:5432/test",
        help="a database to connect to for creating the bench database",
    )
    parser.add_argument("--pg-database", default="courriel_bench_segments")
    parser.add_argument("--reuse", action="store_true", help="count on the seeded databases")
    parser.add_argument(
        "--csv-rows", type=int, default=None, help="CSV import size (default 1M x scale; 0: skip)"
    )
    args = parser.parse_args(argv)
    args.databases = [d.strip() for d in args.databases.split(",") if d.strip()]
    return args


async def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    args.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
    pg_url = None
    if "postgresql" in args.databases:
        admin = make_url(args.postgres_url)
        pg_url = admin.set(database=args.pg_database).render_as_string(hide_password=False)
    if not args.reuse:
        if pg_url is not None:
            pg_url = await _fresh_pg(args.postgres_url, args.pg_database)
        spent = await seed(args, pg_url)
        print("seeding seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in spent.items()), flush=True)
    urls = {}
    if "sqlite" in args.databases:
        urls["sqlite"] = f"sqlite:///{args.sqlite_path}"
    if pg_url is not None:
        urls["postgresql"] = pg_url
    # The load average says how shared the machine was (other processes inflate timings).
    load_before = os.getloadavg()[0]
    results = {name: await measure(url, args.runs) for name, url in urls.items()}
    load_after = os.getloadavg()[0]
    print(f"\n{'segment':<48}" + "".join(f"{name:>14} {'ms':>8}" for name in results))
    mismatch = False
    for label in SEGMENTS:
        cells = [results[name][label] for name in results]
        mismatch |= len({members for members, _ in cells}) > 1
        print(f"{label:<48}" + "".join(f"{m:>14,} {ms:>8.1f}" for m, ms in cells))
    print(
        f"\nmedian of {args.runs} runs per count; scale {args.scale}; seed {args.seed}; "
        f"python {sys.version.split()[0]}; load average {load_before:.1f} before, "
        f"{load_after:.1f} after"
    )
    await csv_import(args)
    if mismatch:
        print("MISMATCH: the databases disagree on a count", file=sys.stderr)
        sys.exit(1)


async def csv_import(args: argparse.Namespace) -> None:
    """Time a CSV import of ``--csv-rows`` contacts into an empty database per engine."""
    rows = args.csv_rows if args.csv_rows is not None else int(1_000_000 * args.scale)
    if rows <= 0:
        return
    path = args.sqlite_path.with_name("courriel-bench-contacts.csv")
    write_csv(path, rows, args.seed)
    urls = {}
    if "sqlite" in args.databases:
        target = args.sqlite_path.with_name("courriel-bench-csv.db")
        for suffix in ("", "-wal", "-shm"):
            Path(f"{target}{suffix}").unlink(missing_ok=True)
        urls["sqlite"] = f"sqlite:///{target}"
    if "postgresql" in args.databases:
        urls["postgresql"] = await _fresh_pg(args.postgres_url, f"{args.pg_database}_csv")
    for name, url in urls.items():
        seconds, imported, errors = await time_import(url, path, NOW)
        print(
            f"CSV import {name}: {rows:,} rows in {seconds:.1f} s ({rows / seconds:,.0f} rows/s), "
            f"{imported:,} imported, {errors:,} bad rows reported",
            flush=True,
        )
    path.unlink(missing_ok=True)


if __name__ == "__main__":
    asyncio.run(main())
