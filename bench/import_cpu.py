"""Where a PostgreSQL CSV import's CPU goes: the import process, its parsing worker, the rest.

Writes ``bench/segments.py``'s CSV (``_segments_csv.write_csv``: list and consent for
every row, as ``courriel contacts import --list … --consent subscribed``), imports it into
a fresh database on the server of ``--postgres-url`` (``time_import``, the product code),
and prints the wall time beside the CPU seconds of the whole machine (``/proc/stat``), of
this process (every thread) and of the worker process. The rest is mostly PostgreSQL:
run it on an otherwise idle machine.

    .venv/bin/python bench/import_cpu.py --rows 1000000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import tempfile
import time
from pathlib import Path

import asyncpg
from _segments_csv import time_import, write_csv
from _segments_seed import NOW
from sqlalchemy.engine import make_url


def _busy_seconds() -> float:
    # Every CPU's time outside idle and iowait, since boot (Linux).
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def _children_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


async def _fresh(admin_url: str, name: str) -> str:
    admin = make_url(admin_url).set(drivername="postgresql")
    conn = await asyncpg.connect(admin.render_as_string(hide_password=False))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return admin.set(database=name).render_as_string(hide_password=False)


async def run(args: argparse.Namespace) -> None:
    url = await _fresh(args.postgres_url, args.database)
    with tempfile.TemporaryDirectory(prefix="courriel-bench-import-cpu-") as folder:
        path = Path(folder) / "contacts.csv"
        write_csv(path, args.rows, args.seed)
        busy, own, worker = _busy_seconds(), time.process_time(), _children_seconds()
        seconds, imported, errors = await time_import(url, path, NOW)
        busy = _busy_seconds() - busy
        own = time.process_time() - own
        worker = _children_seconds() - worker
    print(
        f"{args.rows:,} rows in {seconds:.1f} s ({imported:,} imported, {errors:,} bad); "
        f"CPU s: machine {busy:.1f}, import process {own:.1f}, worker {worker:.1f}, "
        f"rest (PostgreSQL, other) {busy - own - worker:.1f}; "
        f"load {os.getloadavg()[0]:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=20261127)
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--database", default="courriel_bench_import_cpu")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":  # the import's worker process is spawned: it re-imports this file
    main()
