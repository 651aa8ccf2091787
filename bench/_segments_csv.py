"""CSV import timing for bench/segments.py: N contacts imported into an empty database.

Times ``courriel.marketing.csvio.import_contacts`` (the code behind ``courriel contacts
import``) on a deterministic file, into a freshly migrated database per engine, with a
list and consent as the CLI would pass them.
"""

from __future__ import annotations

import csv
import random
import time
from datetime import datetime
from pathlib import Path

from courriel.marketing.csvio import import_contacts
from courriel.storage.db import Database

HEADER = ["email", "first_name", "last_name", "country", "city", "tags", "email_consent", "plan"]


def write_csv(path: Path, rows: int, seed: int) -> None:
    """A CSV of ``rows`` contacts (every 1000th row has a bad address)."""
    rng = random.Random(seed)
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(HEADER)
        for i in range(1, rows + 1):
            email = f"not-an-address-{i}" if i % 1000 == 0 else f"csv{i}@import{i % 89}.example"
            writer.writerow(
                [
                    email,
                    rng.choice(["Anna", "Ben", "Chloé", ""]),
                    rng.choice(["Martin", "Schmidt", ""]),
                    rng.choice(["FR", "DE", "US", ""]),
                    rng.choice(["Paris", "Berlin", ""]),
                    rng.choice(["", "vip", "vip;wholesale"]),
                    rng.choice(["subscribed", "", "unsubscribed"]),
                    rng.choice(["free", "pro"]),
                ]
            )


async def time_import(url: str, path: Path, now: datetime) -> tuple[float, int, int]:
    """Import ``path`` into the migrated database at ``url``: (seconds, imported, errors)."""
    db = await Database.open(url)
    try:
        await db.upgrade()
        start = time.perf_counter()
        with path.open(newline="", encoding="utf-8") as stream:
            report = await import_contacts(
                db,
                stream,
                list_name="Imported",
                consent="subscribed",
                now=now,
            )
        return time.perf_counter() - start, report.imported, len(report.errors)
    finally:
        await db.close()
