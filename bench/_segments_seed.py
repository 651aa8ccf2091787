"""Deterministic data and bulk loaders for bench/segments.py (a shop of contacts, orders, events).

The generator draws everything from one random.Random(seed), so two runs (and both
databases in one run) get the same rows. Loaders write with COPY (PostgreSQL) or
executemany in big transactions (SQLite), with secondary indexes and constraints dropped
during the load and rebuilt after it, then ANALYZE.
"""

from __future__ import annotations

import json
import random
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

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
    "order_lines": [
        "id",
        "order_id",
        "product_id",
        "title",
        "quantity",
        "price_minor",
        "contact_id",
        "placed_at",
        "status",
    ],
    "events": ["id", "contact_id", "name", "properties", "value", "occurred_at", "source"],
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
                (
                    self.line_id,
                    self.order_id,
                    rng.randint(1, N_PRODUCTS),
                    "Item",
                    quantity,
                    price,
                    cid,
                    placed,
                    status,
                )
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
