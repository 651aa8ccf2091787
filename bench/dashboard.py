"""The dashboard's Overview (GET /) on a shop with 1M contacts, SQLite and PostgreSQL.

Reuses the databases bench/segments.py seeds (1M contacts, 3M orders, 10M events): run
``bench/segments.py`` once first. This script brings them to the current schema (the
dashboard migration only adds tables), writes 30 days of ``daily_stats`` (replacing the
rows of those days), makes a dashboard user, then times ``GET /`` through the whole app
(httpx ASGI transport, logged in: session lookup, guard, queries, Jinja) — the median and
the slowest of ``--runs`` requests after one warm-up — next to one ``count(*)`` over the
contacts, the kind of query the page must never run. The goal (issue 7): under 300 ms.

    .venv/bin/python bench/dashboard.py
    .venv/bin/python bench/dashboard.py --databases sqlite --runs 50
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from argon2 import PasswordHasher
from sqlalchemy import delete, func, insert, select
from sqlalchemy.engine import make_url

from courriel.mailstore.passwords import Passwords
from courriel.marketing.dailystats import METRICS
from courriel.marketing.links import LinkSigner
from courriel.storage.db import Database
from courriel.storage.models.dashboard import admins, daily_stats
from courriel.storage.models.marketing import contacts
from courriel.testing.mail import RecordingMailer
from courriel.web.app import WebServices, create_app
from courriel.web.dashboard.admins import create_admin

EMAIL = "bench-owner@shop.test"
PASSWORD = "bench password 1234"
NOW = datetime.now(UTC)


async def prepare(db: Database) -> tuple[int, float]:
    """Schema up to date, 30 days of totals, the bench user; the contacts count and its time."""
    await db.upgrade()
    rng = random.Random(7)
    first = (NOW - timedelta(days=30)).date()
    rows = []
    for back in range(31):
        day = first + timedelta(days=back)
        sent = rng.randint(20_000, 60_000)
        values = {
            "sent": sent,
            "delivered": int(sent * 0.98),
            "opened": int(sent * 0.3),
            "clicked": int(sent * 0.04),
            "revenue_minor": rng.randint(100_000, 900_000),
            "bounced": int(sent * 0.02),
            "complained": int(sent * 0.0015),
            "unsubscribed": int(sent * 0.002),
        }
        rows += [{"day": day, "metric": m, "value": values[m]} for m in METRICS]
    async with db.write() as conn:
        await conn.execute(delete(daily_stats).where(daily_stats.c.day >= first))
        await conn.execute(insert(daily_stats), rows)
    passwords = Passwords(PasswordHasher(time_cost=1, memory_cost=64, parallelism=1))
    async with db.read() as conn:
        exists = await conn.scalar(select(admins.c.id).where(admins.c.email == EMAIL))
    if not exists:
        await create_admin(db, passwords, email=EMAIL, password=PASSWORD, role="owner", now=NOW)
    started = time.perf_counter()
    async with db.read() as conn:
        total = int(await conn.scalar(select(func.count()).select_from(contacts)) or 0)
    return total, time.perf_counter() - started


async def measure(url: str, runs: int) -> dict[str, float]:
    """Prepare the database at ``url`` and time ``runs`` requests of the overview."""
    db = await Database.open(url)
    try:
        total, count_seconds = await prepare(db)
        services = WebServices(
            db=db,
            public_url="https://mail.shop.test",
            links=LinkSigner(b"k" * 32),
            mailer=RecordingMailer(),  # the overview sends nothing
            clock=lambda: datetime.now(UTC),
            passwords=Passwords(PasswordHasher(time_cost=1, memory_cost=64, parallelism=1)),
        )
        app = create_app(services)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="https://bench") as client:
            form = await client.get("/login")
            csrf = form.text.split('name="_csrf" value="', 1)[1].split('"', 1)[0]
            login = await client.post(
                "/login", data={"email": EMAIL, "password": PASSWORD, "_csrf": csrf, "next": "/"}
            )
            assert login.status_code == 303, login.text
            warm = await client.get("/")
            assert warm.status_code == 200 and "Overview" in warm.text, warm.status_code
            times = []
            for _ in range(runs):
                started = time.perf_counter()
                response = await client.get("/")
                times.append(time.perf_counter() - started)
                assert response.status_code == 200
    finally:
        await db.close()
    return {
        "contacts": total,
        "median_ms": 1000 * statistics.median(times),
        "max_ms": 1000 * max(times),
        "count_contacts_ms": 1000 * count_seconds,
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=20, help="timed requests (median)")
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--sqlite-path", type=Path, default=Path("/tmp/courriel-bench-segments.db"))
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--pg-database", default="courriel_bench_segments")
    return parser.parse_args(argv)


async def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    urls = {}
    for name in (d.strip() for d in args.databases.split(",")):
        if name == "sqlite":
            if not args.sqlite_path.exists():
                print(
                    f"{args.sqlite_path} is missing: run bench/segments.py first", file=sys.stderr
                )
                return 1
            urls["sqlite"] = f"sqlite:///{args.sqlite_path}"
        elif name == "postgresql":
            url = make_url(args.postgres_url).set(database=args.pg_database)
            urls["postgresql"] = url.render_as_string(hide_password=False)
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    print(f"{'engine':<12}{'contacts':>10}{'GET / median ms':>18}{'max ms':>10}{'count(*) ms':>14}")
    for name, url in urls.items():
        r = await measure(url, args.runs)
        print(
            f"{name:<12}{int(r['contacts']):>10,}{r['median_ms']:>18.1f}{r['max_ms']:>10.1f}"
            f"{r['count_contacts_ms']:>14.1f}",
            flush=True,
        )
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
