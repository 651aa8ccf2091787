"""CSV contact import: rows per second through the product code (SQLite or PostgreSQL).

Writes a deterministic CSV (random.Random(seed)) of ``--rows`` contacts — email, names,
a phone number for half of them, country, city, two tags, consent for some, two custom
attributes — to a temporary folder, then times ``courriel.marketing.csvio.import_contacts``
into a fresh migrated database, then times the same import again (every row already
there: the idempotent path), and checks the counts. The target of issue 5: 1,000,000
rows in under a minute on SQLite. Each pass prints its wall time, the CPU time of this
process (event loop and SQLite writer thread) and of the import's worker process: the two
run side by side, so on a two-core machine wall time is bounded by the larger of them.

    .venv/bin/python bench/contacts_import.py --rows 20000          # quick run
    .venv/bin/python bench/contacts_import.py                       # the recorded run (1M)
    .venv/bin/python bench/contacts_import.py --database-url postgresql://postgres@127.0.0.1/bench
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import random
import resource
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from courriel.marketing import csvio
from courriel.marketing.csvio import ImportReport, import_contacts
from courriel.storage.db import Database, sqlite_url_for

NOW = datetime(2026, 11, 1, tzinfo=UTC)
FIRST = ["Ann", "Bob", "Chloé", "Dmitri", "Eva", "Farid", "Gaël", "Hana", "Ivo", "Jun"]
LAST = ["Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand"]
PLACES = [
    ("FR", "Paris", "06 12 34 5"),
    ("DE", "Berlin", "0151 2345 6"),
    ("GB", "London", "07700 90"),
]
TAGS = ["vip", "newsletter", "wholesale", "b2b", "returning", "sale"]
CONSENT = ["", "", "subscribed", "unsubscribed"]


def _written() -> int:
    # The process's storage writes (Linux), WAL and checkpoints included.
    try:
        for line in Path("/proc/self/io").read_text().splitlines():
            if line.startswith("write_bytes:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def write_csv(path: Path, rows: int, seed: int) -> None:
    """The sample file: ``rows`` data rows plus the header."""
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(
            [
                "email",
                "first_name",
                "last_name",
                "phone",
                "country",
                "city",
                "tags",
                "email_consent",
                "plan",
                "visits",
            ]
        )
        for n in range(rows):
            country, city, prefix = rng.choice(PLACES)
            digits = 10 - len(prefix.replace(" ", "")) + (1 if country == "DE" else 0)
            phone = prefix + "".join(rng.choice("0123456789") for _ in range(digits))
            writer.writerow(
                [
                    f"person{n}@shop{n % 97}.example",
                    rng.choice(FIRST),
                    rng.choice(LAST),
                    phone if n % 2 else "",
                    country,
                    city,
                    ";".join(rng.sample(TAGS, 2)),
                    rng.choice(CONSENT),
                    rng.choice(["free", "gold", "silver"]),
                    str(rng.randrange(100)),
                ]
            )


def _children_cpu() -> float:
    # CPU seconds of the finished child processes: the import's worker, reaped when the
    # import ends.
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


async def timed_import(db: Database, path: Path) -> tuple[float, float, float, ImportReport]:
    """Wall-clock seconds, CPU seconds of this process (every thread) and of its worker
    process, of one import, and its report."""
    start, cpu, worker = time.perf_counter(), time.process_time(), _children_cpu()
    with path.open(encoding="utf-8-sig", newline="") as stream:
        report = await import_contacts(db, stream, list_name="bench", consent="never", now=NOW)
    wall = time.perf_counter() - start
    return wall, time.process_time() - cpu, _children_cpu() - worker, report


async def run(args: argparse.Namespace, folder: Path) -> int:
    """Write the file, import it twice, print the table; 1 when a count is wrong."""
    path = folder / "contacts.csv"
    write_csv(path, args.rows, args.seed)
    db = await Database.open(args.database_url or sqlite_url_for(folder))
    try:
        await db.upgrade()
        first, cpu1, worker1, report1 = await timed_import(db, path)
        second, cpu2, worker2, report2 = await timed_import(db, path)
    finally:
        await db.close()
    print(
        f"{'pass':<8} {'rows':>9} {'seconds':>8} {'cpu s':>7} {'worker':>7} {'rows/s':>8}  counts"
    )
    for name, seconds, cpu, worker, report in (
        ("new", first, cpu1, worker1, report1),
        ("again", second, cpu2, worker2, report2),
    ):
        counts = (
            f"imported={report.imported} updated={report.updated} "
            f"unchanged={report.unchanged} errors={len(report.errors)}"
        )
        rate = args.rows / seconds
        print(
            f"{name:<8} {args.rows:>9} {seconds:>8.2f} {cpu:>7.2f} {worker:>7.2f} {rate:>8.0f}"
            f"  {counts}"
        )
    print("load average:", " ".join(f"{x:.2f}" for x in os.getloadavg()))
    per_batch = csvio.BATCH * (csvio.POSTGRESQL_CHUNKS if db.dialect == "postgresql" else 1)
    print(f"rows per transaction: {per_batch}; bytes written: {_written() / 1e9:.1f} GB")
    print("command:", " ".join(sys.argv))
    ok = report1.imported == args.rows and report2.unchanged == args.rows
    ok = ok and not report1.errors and not report2.errors
    if not ok:
        print("FAILED: counts differ from the number of rows", file=sys.stderr)
    return 0 if ok else 1


def main() -> None:
    """Parse options, run in a temporary folder, remove it unless --keep."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument(
        "--batch",
        type=int,
        default=csvio.BATCH,
        help="rows per parsed chunk (and per write transaction on SQLite)",
    )
    parser.add_argument(
        "--pg-chunks",
        type=int,
        default=csvio.POSTGRESQL_CHUNKS,
        help="chunks per write transaction on PostgreSQL",
    )
    parser.add_argument("--database-url", default="", help="default: SQLite in the temp folder")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    csvio.BATCH = args.batch
    csvio.POSTGRESQL_CHUNKS = args.pg_chunks
    folder = Path(tempfile.mkdtemp(prefix="courriel-bench-import-"))
    try:
        status = asyncio.run(run(args, folder))
    finally:
        if args.keep:
            print("kept", folder)
        else:
            shutil.rmtree(folder, ignore_errors=True)
    sys.exit(status)


if __name__ == "__main__":
    main()
