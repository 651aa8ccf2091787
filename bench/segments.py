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
import json
import random
import sqlite3
import statistics
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from courriel.marketing.segments import parse_segment
from courriel.marketing.segments.service import count
from courriel.storage.db import Database

NOW = datetime(2026, 11, 1, tzinfo=UTC)
HISTORY_DAYS = 730
COUNTRIES = ["FR", "DE", "US", "GB", "ES", "IT", "NL", "BE", None]
COUNTRY_WEIGHTS = [30, 15, 15, 10, 8, 7, 5, 5, 5]
EMAIL_STATUS = (["subscribed", "unsubscribed", "never", "pending"], [55, 15, 25, 5])
EVENT_NAMES = (
    [
        "Viewed Product",
        "Active on Site",
        "Added to Cart",
        "Opened Email",
        "Clicked Email",
        "Started Checkout",
    ],
    [40, 25, 10, 15, 5, 5],
)
ORDER_COUNTS = (list(range(11)), [25, 13, 12, 11, 10, 8, 7, 5, 4, 3, 2])  # mean ≈ 3.06
EVENT_COUNTS_MAX = 20  # uniform 0..20: mean 10
CATEGORIES = [f"cat-{i}" for i in range(30)]
N_PRODUCTS = 2000
CHUNK = 20_000  # contacts per generated chunk

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

COLUMNS: dict[str, list[str]] = {
    "contacts": [
        "id",
        "email",
        "first_name",
        "last_name",
        "country",
        "city",
        "attributes",
        "source",
        "email_status",
        "sms_status",
        "order_count",
        "total_spent_minor",
        "first_order_at",
        "last_order_at",
        "created_at",
        "updated_at",
    ],
    "contact_tags": ["contact_id", "tag"],
    "list_members": ["list_id", "contact_id", "status", "added_at"],
    "orders": [
        "id",
        "external_id",
        "contact_id",
        "currency",
        "subtotal_minor",
        "discount_minor",
        "shipping_minor",
        "tax_minor",
        "total_minor",
        "refunded_minor",
        "discount_codes",
        "status",
        "placed_at",
        "updated_at",
    ],
    "order_lines": ["id", "order_id", "product_id", "title", "quantity", "price_minor"],
    "events": ["id", "contact_id", "name", "properties", "value", "occurred_at", "source"],
}
TIME_COLUMNS = {
    "first_order_at",
    "last_order_at",
    "created_at",
    "updated_at",
    "added_at",
    "placed_at",
    "occurred_at",
}


@dataclass
class Chunk:
    rows: dict[str, list[tuple[Any, ...]]] = field(
        default_factory=lambda: {name: [] for name in COLUMNS}
    )


class Generator:
    """The deterministic shop: every call of :meth:`chunks` yields the same rows."""

    def __init__(self, seed: int, scale: float) -> None:
        self.rng = random.Random(seed)
        self.contacts = max(100, int(1_000_000 * scale))
        self.order_id = 0
        self.line_id = 0
        self.event_id = 0
        self.products = {p: self.rng.sample(CATEGORIES, 2) for p in range(1, N_PRODUCTS + 1)}
        # Orders and events scale with the contacts (3 and 10 per contact on average).

    def when(self) -> datetime:
        return NOW - timedelta(seconds=self.rng.randrange(HISTORY_DAYS * 86_400))

    def chunks(self) -> Iterator[Chunk]:
        for start in range(1, self.contacts + 1, CHUNK):
            chunk = Chunk()
            for cid in range(start, min(start + CHUNK, self.contacts + 1)):
                self.contact(chunk, cid)
            yield chunk

    def contact(self, chunk: Chunk, cid: int) -> None:
        rng = self.rng
        counted: list[tuple[int, datetime]] = []
        for _ in range(rng.choices(*ORDER_COUNTS)[0]):
            counted += self.order(chunk, cid)
        for _ in range(rng.randint(0, EVENT_COUNTS_MAX)):
            self.event(chunk, cid)
        created = self.when()
        attributes = {
            "vip": rng.random() < 0.05,
            "score": rng.randint(0, 100),
            "plan": rng.choice(["free", "basic", "pro"]),
        }
        chunk.rows["contacts"].append(
            (
                cid,
                f"c{cid}@shop{cid % 97}.example",
                rng.choice(["Anna", "Ben", "Chloé", None]),
                rng.choice(["Martin", "Schmidt", None]),
                rng.choices(COUNTRIES, COUNTRY_WEIGHTS)[0],
                rng.choice(["Paris", "Berlin", None]),
                json.dumps(attributes),
                rng.choice(["shopify:main", "import", "tracker"]),
                rng.choices(*EMAIL_STATUS)[0],
                "never",
                len(counted),
                sum(t for t, _ in counted),
                min((w for _, w in counted), default=None),
                max((w for _, w in counted), default=None),
                created,
                created,
            )
        )
        if rng.random() < 0.1:
            chunk.rows["contact_tags"].append((cid, rng.choice(["vip", "wholesale"])))
        if rng.random() < 0.3:
            chunk.rows["list_members"].append((1, cid, "subscribed", created))

    def order(self, chunk: Chunk, cid: int) -> list[tuple[int, datetime]]:
        rng = self.rng
        self.order_id += 1
        placed = self.when()
        status = rng.choices(["paid", "fulfilled", "cancelled", "refunded"], [40, 52, 5, 3])[0]
        total = 0
        for _ in range(rng.choice((1, 1, 2, 3))):
            self.line_id += 1
            price = rng.randrange(500, 20_000)
            quantity = rng.choice((1, 1, 1, 2))
            total += price * quantity
            chunk.rows["order_lines"].append(
                (self.line_id, self.order_id, rng.randint(1, N_PRODUCTS), "Item", quantity, price)
            )
        refunded = total if status == "refunded" else 0
        chunk.rows["orders"].append(
            (
                self.order_id,
                str(self.order_id),
                cid,
                "EUR",
                total,
                0,
                0,
                0,
                total,
                refunded,
                "[]",
                status,
                placed,
                placed,
            )
        )
        return [] if status == "cancelled" else [(total - refunded, placed)]

    def event(self, chunk: Chunk, cid: int) -> None:
        rng = self.rng
        self.event_id += 1
        name = rng.choices(*EVENT_NAMES)[0]
        if name == "Viewed Product":
            product = rng.randint(1, N_PRODUCTS)
            properties = {
                "ProductID": product,
                "Categories": self.products[product],
                "Price": rng.randrange(5, 200),
            }
        elif name in ("Opened Email", "Clicked Email"):
            properties = {"campaign_id": rng.randint(1, 200)}
        else:
            properties = {}
        contact = None if rng.random() < 0.03 else cid
        chunk.rows["events"].append(
            (
                self.event_id,
                contact,
                name,
                json.dumps(properties),
                None,
                self.when(),
                "tracker",
            )
        )


# -- loaders -----------------------------------------------------------------------------


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, datetime):
        # As courriel's UTCDateTime stores it on SQLite: naive UTC text with microseconds.
        return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
    return value


class SqliteLoader:
    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        for pragma in (
            "synchronous=OFF",
            "cache_size=-1000000",
            "foreign_keys=OFF",
            "temp_store=MEMORY",
        ):
            self.conn.execute(f"PRAGMA {pragma}")
        self.indexes = self.conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type='index' AND sql IS NOT NULL "
            f"AND tbl_name IN ({','.join('?' * len(COLUMNS))})",
            list(COLUMNS),
        ).fetchall()
        for name, _ in self.indexes:
            self.conn.execute(f'DROP INDEX "{name}"')
        self.conn.execute(
            "INSERT INTO lists (id, name, double_opt_in, created_at) VALUES "
            "(1, 'Newsletter', 0, '2024-01-01 00:00:00.000000')"
        )
        self.conn.executemany(
            "INSERT INTO products (id, external_id, title, status, created_at, updated_at) "
            "VALUES (?, ?, 'Product', 'active', '2024-01-01 00:00:00.000000', "
            "'2024-01-01 00:00:00.000000')",
            [(p, str(p)) for p in range(1, N_PRODUCTS + 1)],
        )

    def categories(self, products: dict[int, list[str]]) -> None:
        self.conn.executemany(
            "INSERT INTO product_categories (product_id, category) VALUES (?, ?)",
            [(p, c) for p, cats in products.items() for c in cats],
        )

    def load(self, chunk: Chunk) -> None:
        self.conn.execute("BEGIN")
        for table, rows in chunk.rows.items():
            columns = COLUMNS[table]
            sql = (
                f"INSERT INTO {table} ({', '.join(columns)}) "
                f"VALUES ({', '.join('?' * len(columns))})"
            )
            self.conn.executemany(sql, ([_sqlite_value(v) for v in row] for row in rows))
        self.conn.execute("COMMIT")

    def finish(self) -> None:
        for _, sql in self.indexes:
            self.conn.execute(sql)
        self.conn.execute("PRAGMA analysis_limit=2000")
        self.conn.execute("ANALYZE")
        self.conn.close()


class PostgresLoader:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self.restore: list[str] = []

    async def start(self) -> None:
        tables = list(COLUMNS)
        constraints = await self.conn.fetch(
            "SELECT conrelid::regclass::text AS tbl, conname, pg_get_constraintdef(oid) AS def "
            "FROM pg_constraint WHERE contype = 'u' AND conrelid::regclass::text = ANY($1)",
            tables,
        )
        for row in constraints:
            await self.conn.execute(f'ALTER TABLE {row["tbl"]} DROP CONSTRAINT "{row["conname"]}"')
            self.restore.append(
                f'ALTER TABLE {row["tbl"]} ADD CONSTRAINT "{row["conname"]}" {row["def"]}'
            )
        indexes = await self.conn.fetch(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.tablename = ANY($1) "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)",
            tables,
        )
        for row in indexes:
            await self.conn.execute(f'DROP INDEX "{row["indexname"]}"')
            self.restore.append(row["indexdef"])
        fks = await self.conn.fetch(
            "SELECT conrelid::regclass::text AS tbl, conname, pg_get_constraintdef(oid) AS def "
            "FROM pg_constraint WHERE contype = 'f' AND conrelid::regclass::text = ANY($1)",
            tables,
        )
        for row in fks:
            await self.conn.execute(f'ALTER TABLE {row["tbl"]} DROP CONSTRAINT "{row["conname"]}"')
            self.restore.append(
                f'ALTER TABLE {row["tbl"]} ADD CONSTRAINT "{row["conname"]}" {row["def"]}'
            )
        await self.conn.execute(
            "INSERT INTO lists (id, name, double_opt_in, created_at) "
            "VALUES (1, 'Newsletter', false, now())"
        )
        await self.conn.executemany(
            "INSERT INTO products (id, external_id, title, status, created_at, updated_at) "
            "VALUES ($1, $2, 'Product', 'active', now(), now())",
            [(p, str(p)) for p in range(1, N_PRODUCTS + 1)],
        )

    async def categories(self, products: dict[int, list[str]]) -> None:
        await self.conn.copy_records_to_table(
            "product_categories",
            records=[(p, c) for p, cats in products.items() for c in cats],
            columns=["product_id", "category"],
        )

    async def load(self, chunk: Chunk) -> None:
        for table, rows in chunk.rows.items():
            if rows:
                await self.conn.copy_records_to_table(table, records=rows, columns=COLUMNS[table])

    async def finish(self) -> None:
        await self.conn.execute("SET maintenance_work_mem = '1GB'")
        for sql in self.restore:
            await self.conn.execute(sql)
        for table in ("contacts", "orders", "order_lines", "events", "lists", "products"):
            await self.conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT coalesce(max(id), 1) FROM {table}))"
            )
        # Autovacuum would do it soon after such a load; the visibility map lets counts use
        # index-only scans.
        await self.conn.execute("VACUUM (ANALYZE)")


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
    args = parser.parse_args(argv)
    args.databases = [d.strip() for d in args.databases.split(",") if d.strip()]
    return args


async def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
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
    results = {name: await measure(url, args.runs) for name, url in urls.items()}
    print(f"\n{'segment':<48}" + "".join(f"{name:>14} {'ms':>8}" for name in results))
    mismatch = False
    for label in SEGMENTS:
        cells = [results[name][label] for name in results]
        mismatch |= len({members for members, _ in cells}) > 1
        print(f"{label:<48}" + "".join(f"{m:>14,} {ms:>8.1f}" for m, ms in cells))
    print(
        f"\nmedian of {args.runs} runs per count; scale {args.scale}; seed {args.seed}; "
        f"python {sys.version.split()[0]}"
    )
    print(await csv_import_note())
    if mismatch:
        print("MISMATCH: the databases disagree on a count", file=sys.stderr)
        sys.exit(1)


async def csv_import_note() -> str:
    try:
        from courriel.marketing import csvio  # type: ignore[attr-defined]
    except ImportError:
        return "CSV import: courriel.marketing.csvio does not exist yet; not timed"
    return f"CSV import: {csvio.__name__} exists; timing it is not wired into this bench yet"


if __name__ == "__main__":
    asyncio.run(main())
