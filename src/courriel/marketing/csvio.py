"""CSV import of contacts: any size, streamed, batched, idempotent.

Owns the mapping from CSV rows to contacts, tags, email consent and one list's
memberships. Export lives in :mod:`courriel.marketing.csvexport`.

Format: a header row is required; columns are matched by name, case-insensitively:
``email`` (required), ``first_name``, ``last_name``, ``phone``, ``country``, ``region``,
``city``, ``postal_code``, ``time_zone``, ``tags`` (``;``-separated), ``email_consent``
(subscribed | unsubscribed | pending | never; overrides the import's ``consent``). Any
other column is a custom attribute (its header, without an ``attributes.`` prefix, is the
key; values are strings). Empty cells leave stored values unchanged. A leading ``'``
written by the exporter before ``= + - @ TAB CR`` or ``'`` (spreadsheet formula protection,
:func:`protect_cell`) is removed.

Invariants:
- Rows are read one at a time and written in batches of :data:`BATCH` rows
  (:data:`POSTGRESQL_CHUNKS` times that on PostgreSQL), one write transaction each
  (:meth:`Database.run_write`: on SQLite the whole batch runs on the writer thread), with
  one read per table per batch and bulk writes (:mod:`courriel.marketing.csvbatch`): no
  per-row queries.
- Normalising is CPU work (phone numbers above all): past the first chunks it runs in one
  worker process, never on the event loop, while the previous batch is being written;
  :data:`CHUNKS_IN_FLIGHT` chunks are queued for it. Chunks come back in file order, so
  batches are written in file order. Parsed rows cross back as named tuples (they unpickle
  in 1.6 µs where the former frozen dataclass took 3.6) carrying their INSERT values.
- A bad row is reported with its first line number and the field at fault and skipped;
  the other rows go on. An address erased on request (a "forgotten" hash suppression)
  is never imported again.
- Importing a file twice changes nothing the second time: merges follow
  :func:`courriel.marketing.contacts.upsert_contact` (None/empty leaves data, attributes
  merge, tags add), consent proof is added only when the status changes, memberships
  that exist are left as they are (an unsubscribed member is not re-subscribed).
- Consent "never" never overwrites a recorded status: it means "no consent given".
- On PostgreSQL the batches go by COPY (:mod:`courriel.marketing.csvcopy`) and the tables
  are ANALYZEd as the import grows them (10k, 20k, 40k … new contacts), so that the batch
  reads keep their index plans on a table that was empty when the import began.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import multiprocessing
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from operator import itemgetter
from typing import Any

from courriel.errors import InvalidInput
from courriel.marketing.contacts import normalise_fields
from courriel.marketing.csvbatch import BatchRow, BatchTotals, new_values, write_batch
from courriel.marketing.lists import ensure_list
from courriel.marketing.normalise import check_attributes, normalise_email, normalise_tags
from courriel.marketing.types import CONSENT_STATUSES, ContactData
from courriel.storage.db import Database

__all__ = [
    "BATCH",
    "KNOWN_COLUMNS",
    "POSTGRESQL_CHUNKS",
    "ImportReport",
    "RowError",
    "import_contacts",
    "protect_cell",
    "unprotect_cell",
]

BATCH = 1000  # rows per chunk parsed, and per write transaction on SQLite
# PostgreSQL writes this many chunks per transaction: its per-statement and per-commit
# costs are paid once per 5,000 rows, and a long batch blocks no other writer there (it
# would on SQLite, whose one writer also commits mail).
POSTGRESQL_CHUNKS = 5
ANALYZE_FIRST = 10_000  # new contacts before the first ANALYZE (PostgreSQL), then doubling
_ANALYZE = "ANALYZE contacts, contact_tags, list_members"
# Chunks parsed ahead of the writer: while it waits for a batch to commit, the worker has
# the others to parse.
CHUNKS_IN_FLIGHT = 4
INLINE_CHUNKS = 2  # files of up to this many chunks are parsed without a worker process
KNOWN_COLUMNS = (
    "email",
    "first_name",
    "last_name",
    "phone",
    "country",
    "region",
    "city",
    "postal_code",
    "time_zone",
    "tags",
    "email_consent",
)
ATTRIBUTE_PREFIX = "attributes."
# OWASP "CSV injection": a spreadsheet runs a cell starting with one of these as a formula.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# The cells the exporter prefixes with "'": a formula start, or a "'" that the importer
# would otherwise take for a protection (so that every value comes back exactly).
_PROTECTED_NEXT = (*_FORMULA_START, "'")
# Python's csv module refuses fields over 128 KiB by default; a contact row never needs more.
csv.field_size_limit(1024 * 1024)


@dataclass(frozen=True, slots=True, kw_only=True)
class RowError:
    """A row that was not imported."""

    line: int  # the row's first line in the file (1 is the header)
    field: str | None  # the column at fault, None for the whole row
    message: str

    def __str__(self) -> str:
        where = f"{self.field}: " if self.field else ""
        return f"line {self.line}: {where}{self.message}"


@dataclass(slots=True, kw_only=True)
class ImportReport:
    """What an import did (counts of rows)."""

    imported: int = 0  # new contacts
    updated: int = 0  # existing contacts that changed
    unchanged: int = 0  # existing contacts the row had nothing new for
    errors: list[RowError] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Header:
    known: dict[str, int]  # column name -> index
    attributes: list[tuple[str, int]]  # attribute key -> index
    width: int
    # The KNOWN_COLUMNS' cells of a row from _cells (a missing column picks the None
    # past the row's end).
    pick: Callable[[list[str | None]], tuple[str | None, ...]]


def protect_cell(value: str) -> str:
    """``value`` as the exporter writes it: a leading ``'`` when a spreadsheet would run it.

    :func:`unprotect_cell` inverts it for every string, so a file exported and imported
    again gives back the same values.
    """
    if value.startswith(_FORMULA_START) or (value[:1] == "'" and value[1:2] in _PROTECTED_NEXT):
        return "'" + value
    return value


def unprotect_cell(value: str) -> str:
    """``value`` without the ``'`` that :func:`protect_cell` added (other cells unchanged)."""
    if value[:1] == "'" and value[1:2] in _PROTECTED_NEXT:
        return value[1:]
    return value


def _read_header(cells: list[str]) -> _Header:
    known: dict[str, int] = {}
    attributes: list[tuple[str, int]] = []
    seen: set[str] = set()
    for index, raw in enumerate(cells):
        name = unprotect_cell(raw.lstrip("\ufeff").strip() if index == 0 else raw.strip())
        lowered = name.lower()
        if not name:
            raise InvalidInput(f"column {index + 1} has no name in the header", field="header")
        if lowered in seen:
            raise InvalidInput(f"column {name!r} appears twice in the header", field="header")
        seen.add(lowered)
        if lowered in KNOWN_COLUMNS:
            known[lowered] = index
        else:
            key = name[len(ATTRIBUTE_PREFIX) :] if lowered.startswith(ATTRIBUTE_PREFIX) else name
            attributes.append((key, index))
    if "email" not in known:
        raise InvalidInput("the header has no email column", field="header")
    check_attributes({key: "" for key, _ in attributes}, field="header")
    width = len(cells)
    pick = itemgetter(*(known.get(name, width) for name in KNOWN_COLUMNS))
    return _Header(known=known, attributes=attributes, width=width, pick=pick)


def _cells(cells: list[str], width: int) -> list[str | None]:
    """Every cell stripped and unprotected, None when empty, padded with None to one past
    ``width`` (the slot of the columns the header lacks)."""
    values: list[str | None] = [
        (unprotect_cell(value) if value[0] == "'" else value) if (value := cell.strip()) else None
        for cell in cells
    ]
    values.extend([None] * (width + 1 - len(values)))
    return values


def _parse_row(cells: list[str], header: _Header, line: int) -> BatchRow:
    if len(cells) > header.width:
        raise InvalidInput(f"{len(cells)} cells but the header has {header.width}")
    values = _cells(cells, header.width)
    email, first, last, phone, country, region, city, postal, zone, tags_cell, consent = (
        header.pick(values)
    )
    if email is None:
        raise InvalidInput("no address", field="email")
    if consent is not None:
        consent = consent.lower()
        if consent not in CONSENT_STATUSES:
            raise InvalidInput(
                f"must be one of {', '.join(CONSENT_STATUSES)}", field="email_consent"
            )
    attributes = {key: value for key, i in header.attributes if (value := values[i]) is not None}
    data = ContactData(
        email=email,
        first_name=first,
        last_name=last,
        phone=phone,
        country=country,
        region=region,
        city=city,
        postal_code=postal,
        time_zone=zone,
    )
    address = normalise_email(email)
    checked = check_attributes(attributes) if attributes else {}
    return BatchRow(
        line=line,
        email=address,
        digest=hashlib.sha256(address.encode("utf-8")).hexdigest(),
        attributes=checked,
        tags=normalise_tags(tags_cell.split(";")) if tags_cell else (),
        consent=consent,
        # Only non-empty cells reach normalise_fields, so it sets no None (no clearing).
        values=new_values(address, normalise_fields(data), checked),
    )


def _open(stream: Iterable[str]) -> tuple[Any, _Header]:
    """The CSV reader past the header, and the header."""
    reader = csv.reader(iter(stream))
    try:
        header_cells = next(reader)
    except StopIteration:
        raise InvalidInput("the file is empty: a header row is needed", field="header") from None
    except csv.Error as exc:
        raise InvalidInput(f"unreadable header: {exc}", field="header") from exc
    return reader, _read_header(header_cells)


def _records(reader: Any, report: ImportReport) -> Iterator[list[tuple[int, list[str]]]]:
    """Chunks of (first line, cells) of the non-blank records; unreadable ones are reported.

    An unreadable record is reported here and stands in its chunk as ``(line, [])``, so that
    it is counted as read.
    """
    chunk: list[tuple[int, list[str]]] = []
    previous = reader.line_num
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            report.errors.append(RowError(line=previous + 1, field=None, message=str(exc)))
            chunk.append((previous + 1, []))
            previous = reader.line_num
            continue
        line, previous = previous + 1, reader.line_num
        # Most rows are kept on their first cell, without a generator: the event loop reads
        # every row, and this took 1.8 -> 1.3 µs per row with the CSV parsing.
        if (cells and cells[0].strip()) or any(cell.strip() for cell in cells):
            chunk.append((line, cells))
            if len(chunk) >= BATCH:
                yield chunk
                chunk = []
    if chunk:
        yield chunk


def parse_chunk(
    header: _Header, chunk: list[tuple[int, list[str]]]
) -> tuple[list[BatchRow], list[RowError]]:
    """Parse and normalise CSV records (pure: runs in a worker process for big files)."""
    rows: list[BatchRow] = []
    errors: list[RowError] = []
    for line, cells in chunk:
        if not cells:
            continue  # unreadable, reported by the reader
        try:
            rows.append(_parse_row(cells, header, line))
        except InvalidInput as exc:
            errors.append(RowError(line=line, field=exc.field, message=str(exc)))
    return rows, errors


class _Parser:
    """Runs :func:`parse_chunk` inline for the first chunks, then in a worker process.

    The worker keeps CPU work off the event loop (1,000 rows take tens of milliseconds to
    normalise) and, on a machine with two cores, parses while the database writes.
    Small files never start it.
    """

    def __init__(self, header: _Header) -> None:
        self.header = header
        self.chunks = 0
        self.pool: ProcessPoolExecutor | None = None

    async def parse(
        self, chunk: list[tuple[int, list[str]]]
    ) -> tuple[list[BatchRow], list[RowError]]:
        self.chunks += 1
        if self.chunks <= INLINE_CHUNKS:
            return parse_chunk(self.header, chunk)
        if self.pool is None:
            self.pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.pool, parse_chunk, self.header, chunk)

    async def close(self) -> None:
        if self.pool is not None:
            pool, self.pool = self.pool, None
            await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True)


async def import_contacts(
    db: Database,
    stream: Iterable[str],
    *,
    list_name: str | None = None,
    consent: str | None = None,
    now: datetime,
    progress: Callable[[int], None] | None = None,
    source: str = "import",
) -> ImportReport:
    """Import contacts from CSV text (a file opened with ``newline=""`` or any line iterator).

    Args:
        db: the database.
        stream: the CSV text; a UTF-8 BOM on the header is ignored, CRLF and quoted
            multi-line fields are read as CSV says (RFC 4180).
        list_name: add every imported contact to this list (created when missing).
        consent: email consent for every row without an ``email_consent`` cell.
        now: the time recorded on contacts, proof rows and memberships.
        progress: called after each batch with the number of rows read so far.
        source: the contacts' ``source`` and the consent proof's method.

    Returns:
        Counts and every bad row.

    Raises:
        InvalidInput: the file is unusable (no header, no email column, duplicate
            columns) or ``consent`` is not a status; no row was imported.
    """
    if consent is not None and consent not in CONSENT_STATUSES:
        raise InvalidInput(f"must be one of {', '.join(CONSENT_STATUSES)}", field="consent")
    report = ImportReport()
    # The header is read first: an unusable file fails before anything is written.
    reader, header = _open(stream)
    list_id = None
    if list_name is not None:
        async with db.write() as conn:
            list_id = (await ensure_list(conn, list_name, now=now)).id
    writer = _BatchWriter(
        db, report, list_id=list_id, consent=consent, source=source, now=now, progress=progress
    )
    parser = _Parser(header)
    # Chunks being parsed, in file order, each with its count of unreadable records.
    pending: deque[tuple[int, asyncio.Future[tuple[list[BatchRow], list[RowError]]]]] = deque()

    async def consume() -> None:
        unreadable, future = pending.popleft()
        rows, errors = await future
        report.errors.extend(errors)
        writer.read += unreadable + len(errors)
        await writer.add(rows)

    try:
        for chunk in _records(reader, report):
            unreadable = sum(1 for _, cells in chunk if not cells)
            pending.append((unreadable, asyncio.ensure_future(parser.parse(chunk))))
            if len(pending) >= CHUNKS_IN_FLIGHT:
                await consume()
        while pending:
            await consume()
        await writer.flush()
    finally:
        for _, future in pending:
            future.cancel()
        await writer.finish()
        await parser.close()
    report.errors.sort(key=lambda error: error.line)
    return report


class _BatchWriter:
    """Collects rows into batches; writes batch N while batch N+1 is being parsed.

    One batch at most is in flight, so batches commit in file order (a repeated address
    starts a new batch, so its earlier row is written first).
    """

    def __init__(
        self,
        db: Database,
        report: ImportReport,
        *,
        list_id: int | None,
        consent: str | None,
        source: str,
        now: datetime,
        progress: Callable[[int], None] | None,
    ) -> None:
        self.db, self.report, self.progress = db, report, progress
        self.options: dict[str, Any] = {
            "list_id": list_id,
            "consent": consent,
            "source": source,
            "now": now,
        }
        self.batch: list[BatchRow] = []
        self.size = BATCH * (POSTGRESQL_CHUNKS if db.dialect == "postgresql" else 1)
        self.emails: set[str] = set()
        self.read = 0
        self.reported = 0
        self.pending: asyncio.Future[BatchTotals] | None = None
        self.analyze_at = ANALYZE_FIRST
        # write_batch's hint: the rows are probably new (as most of the last batch's were).
        self.insert_first = True

    async def add(self, rows: list[BatchRow]) -> None:
        """Count parsed rows and queue them."""
        batch, emails = self.batch, self.emails
        for row in rows:
            self.read += 1
            if row.email in emails:
                await self.flush()
            batch.append(row)
            emails.add(row.email)
            if len(batch) >= self.size:
                await self.flush()

    async def flush(self) -> None:
        """Start writing the current batch once the previous one has committed."""
        await self.finish()
        if self.batch:
            rows, options = list(self.batch), {**self.options, "insert_first": self.insert_first}
            self.batch.clear()
            self.emails.clear()
            self.pending = asyncio.ensure_future(
                self.db.run_write(lambda conn: write_batch(conn, rows, **options))
            )
        if self.progress is not None and self.read != self.reported:
            self.reported = self.read
            self.progress(self.read)

    async def finish(self) -> None:
        """Wait for the batch in flight, if any, and count what it did."""
        if self.pending is not None:
            pending, self.pending = self.pending, None
            totals = await pending
            _add(self.report, totals)
            self.insert_first = totals.imported > totals.updated + totals.unchanged
            if self.db.dialect == "postgresql" and self.report.imported >= self.analyze_at:
                await self._analyze()

    async def _analyze(self) -> None:
        # PostgreSQL plans the batch reads from table statistics. A table that grew from
        # empty has none until autovacuum comes by (never, when it is off): the planner
        # then takes "contact_id IN (1,000 ids)" for most of contact_tags and scans it all
        # on every batch (measured: 126 ms per batch at 1M contacts). ANALYZE at 10k, 20k,
        # 40k … new contacts: a few runs of ~0.1-1 s in a 1M-row import.
        self.analyze_at = 2 * self.report.imported
        await self.db.run_write(lambda conn: conn.exec_driver_sql(_ANALYZE))


def _add(report: ImportReport, totals: BatchTotals) -> None:
    report.imported += totals.imported
    report.updated += totals.updated
    report.unchanged += totals.unchanged
    report.errors.extend(
        RowError(line=line, field="email", message=message) for line, message in totals.refused
    )
