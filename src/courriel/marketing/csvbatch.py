"""One write transaction of a contact import: a batch of parsed rows, set-based.

Owns the merge logic of :mod:`courriel.marketing.csvio`'s batches; the statements live
with each engine's store (:mod:`courriel.marketing.csvlite` for SQLite,
:mod:`courriel.marketing.csvcopy` for PostgreSQL). Runs on a synchronous connection
(:meth:`courriel.storage.db.Database.run_write`: on SQLite, the writer thread), so it does
no I/O of its own and no per-row query: one read of the batch's erased-address hashes, one
of its contacts, one of their tags, then one bulk statement per table. On PostgreSQL,
addresses another transaction inserted after that read are read once more and merged as
updates (the INSERT's RETURNING says which were skipped); a batch expected to be new skips
the first contacts read and relies on that alone (``insert_first``).

The rows go to the stores as tuples of values already converted by each column's own
SQLAlchemy bind processor (timestamps, JSON), on the driver's connection: SQLAlchemy's
per-statement and per-row parameter handling cost more than the database's own work
(measured on SQLite: ~35 of ~55 µs per imported row).

Invariants: the merge rules of :func:`courriel.marketing.contacts.upsert_contact`
(None leaves data, attributes merge, tags add, ``source`` keeps its first value,
``updated_at`` moves only on change) and of :mod:`courriel.marketing.consent` (a proof row
exactly when a status changes, in step with ``contacts.email_status``). Tags and
memberships of contacts this batch inserted cannot exist yet (nobody else can see those
contacts before the commit), so they are inserted without a conflict check; those of
existing contacts are inserted with ON CONFLICT DO NOTHING.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from itertools import repeat
from typing import Any, NamedTuple, Protocol

from sqlalchemy.engine import Connection

from courriel.errors import InvalidInput
from courriel.marketing.dbutil import binder
from courriel.marketing.normalise import check_attributes
from courriel.storage.models.marketing import contacts

__all__ = [
    "EXISTING_COLUMNS",
    "INSERT_COLUMNS",
    "MERGED",
    "UPDATE_COLUMNS",
    "BatchRow",
    "BatchStore",
    "BatchTotals",
    "new_values",
    "write_batch",
]

MERGED = (
    "first_name",
    "last_name",
    "phone",
    "country",
    "region",
    "city",
    "postal_code",
    "time_zone",
)
# The layouts of the records a BatchStore takes and gives (contacts columns).
INSERT_COLUMNS = ("email", *MERGED, "attributes", "email_status")  # + the batch's constants
UPDATE_COLUMNS = (*MERGED, "attributes", "updated_at")  # then the id
EXISTING_COLUMNS = ("id", "email", "source", "email_status", "attributes", *MERGED)
_MEMBER_STATUS = {"unsubscribed": "unsubscribed", "pending": "pending"}
# A value on which a JSON serializer other than json.dumps would show (non-ASCII, nesting,
# numbers, separators).
_JSON_PROBE = {"é": [1, 2.5, None, True], "k": {"x": '\u2028"'}}


class BatchRow(NamedTuple):
    """A parsed, normalised CSV row.

    A named tuple rather than a frozen dataclass: a million of them cross from the worker
    process, and one unpickles in ~1.5 µs where the dataclass took 3.6 on a quiet core and
    ~20 in the import's busy main process (its ``__setstate__`` goes through
    ``dataclasses.fields()`` and ``object.__setattr__`` per field).
    """

    line: int
    email: str  # normalised
    digest: str  # SHA-256 hex of ``email`` (the erased-address check)
    attributes: dict[str, Any]
    tags: tuple[str, ...]
    consent: str | None  # the row's email_consent cell
    # The row as a new contact: INSERT_COLUMNS but email_status (:func:`new_values`),
    # built by the worker process so that the writer only adds the status. A MERGED
    # column the row does not set is None: an import never clears a column (an empty
    # cell leaves the stored value), so None also means "keep" when merging.
    values: tuple[Any, ...]


def new_values(email: str, fields: dict[str, Any], attributes: dict[str, Any]) -> tuple[Any, ...]:
    """:attr:`BatchRow.values` of a row setting ``fields`` (no None: an import never clears
    a column): attributes as ``json.dumps`` writes them, which is what SQLAlchemy's JSON
    type stores unless the engine has another serializer (write_batch then serialises them
    again)."""
    get = fields.get
    return (
        email,
        get("first_name"),
        get("last_name"),
        get("phone"),
        get("country"),
        get("region"),
        get("city"),
        get("postal_code"),
        get("time_zone"),
        json.dumps(attributes),
    )


@dataclass(slots=True, kw_only=True)
class BatchTotals:
    """What one batch did."""

    imported: int = 0
    updated: int = 0
    unchanged: int = 0
    refused: list[tuple[int, str]] = field(default_factory=list)  # (line, message)


class BatchStore(Protocol):
    """One engine's statements for a batch, all in the caller's transaction.

    Records are tuples in the column order given beside each method; values are already
    converted for the driver. ``fresh`` rows belong to contacts this transaction inserted.
    """

    # Whether insert_contacts leaves out the addresses that existed (PostgreSQL's
    # RETURNING); on SQLite it returns every address given, so it must only get new ones.
    reports_skipped: bool

    def forgotten(self, digests: list[str]) -> set[str]:
        """The erased-address hashes among ``digests``."""

    def existing(self, emails: list[str]) -> dict[str, dict[str, Any]]:
        """The stored contacts of ``emails``, by address: :data:`EXISTING_COLUMNS` by name,
        attributes as a dict."""

    def tags(self, ids: list[int]) -> set[tuple[int, str]]:
        """The (contact id, tag) pairs of these contacts."""

    def insert_contacts(
        self, records: list[tuple[Any, ...]], constants: dict[str, Any]
    ) -> dict[str, int]:
        """INSERT … ON CONFLICT (email) DO NOTHING; the ids of the rows inserted, by address.

        Records: :data:`INSERT_COLUMNS`; ``constants`` gives the columns every row shares
        (source, sms_status, counters, created_at, updated_at).
        """

    def update_contacts(self, records: list[tuple[Any, ...]]) -> None:
        """UPDATE each contact: :data:`UPDATE_COLUMNS`, then its id."""

    def insert_tags(self, records: list[tuple[int, str]], *, fresh: bool) -> None:
        """Add (contact id, tag) pairs."""

    def insert_consents(self, records: list[tuple[Any, ...]], *, fresh: bool) -> None:
        """Append proof rows: contact_id, channel, status, method, ip, detail, recorded_at."""

    def update_statuses(self, records: list[tuple[Any, ...]]) -> None:
        """Set email_status, updated_at (then the contact's id) on existing contacts."""

    def insert_members(self, records: list[tuple[Any, ...]], *, fresh: bool) -> None:
        """Add memberships: list_id, contact_id, status, added_at, confirmed_at."""


@dataclass(slots=True)
class _Plan:
    inserts: list[tuple[Any, ...]] = field(default_factory=list)
    inserted_rows: list[BatchRow] = field(default_factory=list)  # in step with ``inserts``
    updates: list[tuple[Any, ...]] = field(default_factory=list)
    changed: set[str] = field(default_factory=set)  # emails of existing contacts that change


@dataclass(slots=True, kw_only=True)
class _Context:
    """The import's options with their values converted for the driver."""

    consent: str | None
    source: str
    now: Any  # ``now`` as the timestamp columns store it
    to_json: Callable[[Any], Any]  # attributes -> what the JSON column stores
    json_dumps: bool  # to_json is json.dumps: BatchRow.values are right as they are


def write_batch(
    conn: Connection,
    rows: list[BatchRow],
    *,
    list_id: int | None,
    consent: str | None,
    source: str,
    now: datetime,
    insert_first: bool = False,
) -> BatchTotals:
    """Write ``rows`` (distinct addresses) in the caller's transaction.

    With ``insert_first`` (a hint: the rows are probably new), PostgreSQL inserts every row
    before reading any contact and reads only the addresses the INSERT skipped, to merge
    them as updates: for a batch of new contacts, one probe of the address index per row
    instead of two (at 1,000,000 contacts the batch read cost 7.5 µs of server CPU and
    18 µs of wall time per row). Addresses that existed cost a sequence value each.
    """
    store = _store(conn)
    context = _context(conn, consent=consent, source=source, now=now)
    totals = BatchTotals()
    rows = _drop_forgotten(store, rows, totals)
    if not rows:
        return totals
    existing: dict[str, dict[str, Any]] = {}
    if not (insert_first and store.reports_skipped):
        existing = store.existing([row.email for row in rows])
    plan, inserted, have = _contacts(store, rows, existing, totals, context)
    refused = {line for line, _ in totals.refused}
    rows = [row for row in rows if row.line not in refused]
    ids = {email: int(stored["id"]) for email, stored in existing.items()}
    ids.update(inserted)
    _write(
        store,
        rows,
        ids=ids,
        existing=existing,
        inserted=inserted,
        have=have,
        plan=plan,
        list_id=list_id,
        context=context,
    )
    totals.imported += len(plan.inserts)
    totals.updated += len(plan.changed)
    totals.unchanged += len(existing) - len(plan.changed)
    return totals


def _context(conn: Connection, *, consent: str | None, source: str, now: datetime) -> _Context:
    to_json = binder(conn, contacts.c.attributes)
    return _Context(
        consent=consent,
        source=source,
        now=binder(conn, contacts.c.updated_at)(now),
        to_json=to_json,
        json_dumps=to_json(_JSON_PROBE) == json.dumps(_JSON_PROBE),
    )


def _contacts(
    store: BatchStore,
    rows: list[BatchRow],
    existing: dict[str, dict[str, Any]],
    totals: BatchTotals,
    context: _Context,
) -> tuple[_Plan, dict[str, int], set[tuple[int, str]]]:
    """Plan every row against ``existing`` and insert the new contacts; the plan, the ids
    inserted by address and the tags the merged contacts have. ``existing`` gains the
    contacts whose address the INSERT skipped."""
    have = _stored_tags(store, rows, existing)
    plan = _Plan()
    for row in rows:
        try:
            _plan_row(plan, row, existing.get(row.email), context)
        except InvalidInput as exc:
            totals.refused.append((row.line, str(exc)))
    inserted = _insert(store, plan, context)
    skipped = {row.email for row in plan.inserted_rows} - inserted.keys()
    if skipped:
        have |= _replan_skipped(
            store, plan, rows, existing=existing, skipped=skipped, totals=totals, context=context
        )
    return plan, inserted, have


def _write(
    store: BatchStore,
    rows: list[BatchRow],
    *,
    ids: dict[str, int],
    existing: dict[str, dict[str, Any]],
    inserted: dict[str, int],
    have: set[tuple[int, str]],
    plan: _Plan,
    list_id: int | None,
    context: _Context,
) -> None:
    """Everything after the contacts' INSERT: tags, updates, consent, memberships."""
    _tags(
        store,
        rows,
        ids,
        existing=existing,
        inserted=inserted,
        have=have,
        plan=plan,
        context=context,
    )
    if plan.updates:
        # Row by row on both engines: an UPDATE … FROM a staging table lets PostgreSQL pick
        # a hash join over the whole contacts table when its statistics are stale, which
        # made each batch cost O(table) (measured: the import became quadratic).
        store.update_contacts(plan.updates)
    consented = _consent(store, rows, ids, existing, context)
    plan.changed.update(email for email in consented if email in existing)
    if list_id is not None:
        _memberships(store, rows, ids, inserted, list_id=list_id, context=context)


def _store(conn: Connection) -> BatchStore:
    # Imported here: each store module imports BatchStore's helpers from this one.
    if conn.dialect.name == "postgresql":
        from courriel.marketing.csvcopy import PostgresStore

        return PostgresStore(conn)
    from courriel.marketing.csvlite import SqliteStore

    return SqliteStore(conn)


def _drop_forgotten(store: BatchStore, rows: list[BatchRow], totals: BatchTotals) -> list[BatchRow]:
    found = store.forgotten([row.digest for row in rows])
    if not found:
        return rows
    for row in rows:
        if row.digest in found:
            totals.refused.append((row.line, "this address was erased on request (GDPR)"))
    return [row for row in rows if row.digest not in found]


def _stored_tags(
    store: BatchStore, rows: list[BatchRow], existing: dict[str, dict[str, Any]]
) -> set[tuple[int, str]]:
    old_ids = [int(existing[row.email]["id"]) for row in rows if row.tags and row.email in existing]
    return store.tags(old_ids) if old_ids else set()


def _plan_row(plan: _Plan, row: BatchRow, stored: dict[str, Any] | None, context: _Context) -> None:
    if stored is None:
        # A new contact is inserted with its consent status already set (the proof row is
        # written by _consent): updating it afterwards rewrote every new row and its indexes
        # (bench/contacts_import.py on PostgreSQL: 2.3 s of 50,000 UPDATEs per 50,000 rows).
        values = row.values
        if not context.json_dumps:
            values = (*values[:-1], context.to_json(row.attributes))
        plan.inserts.append((*values, row.consent or context.consent or "never"))
        plan.inserted_rows.append(row)
        return
    merged = [
        stored[name] if value is None else value
        for name, value in zip(MERGED, row.values[1 : len(MERGED) + 1], strict=True)
    ]
    attributes = dict(stored["attributes"] or {})
    if row.attributes:
        attributes = check_attributes({**attributes, **row.attributes})
    if merged != [stored[name] for name in MERGED] or attributes != stored["attributes"]:
        plan.changed.add(row.email)
        plan.updates.append(_update(stored, merged, attributes, context))


def _update(
    stored: dict[str, Any], merged: list[Any], attributes: dict[str, Any], context: _Context
) -> tuple[Any, ...]:
    return (*merged, context.to_json(attributes), context.now, stored["id"])


def _insert(store: BatchStore, plan: _Plan, context: _Context) -> dict[str, int]:
    """Insert the new contacts; the ids of those inserted here, by address.

    On PostgreSQL a concurrent writer (the API, a webhook, another import) may insert an
    address between this batch's read and its INSERT: ON CONFLICT DO NOTHING skips the
    row, and RETURNING tells which. On SQLite the batch runs in a ``BEGIN IMMEDIATE``
    transaction (:meth:`Database.run_write`), which holds the only write lock from before
    the read, so nothing can come in between.
    """
    if not plan.inserts:
        return {}
    constants = {
        "source": context.source,
        "sms_status": "never",
        "order_count": 0,
        "total_spent_minor": 0,
        "created_at": context.now,
        "updated_at": context.now,
    }
    return store.insert_contacts(plan.inserts, constants)


def _replan_skipped(
    store: BatchStore,
    plan: _Plan,
    rows: list[BatchRow],
    *,
    existing: dict[str, dict[str, Any]],
    skipped: set[str],
    totals: BatchTotals,
    context: _Context,
) -> set[tuple[int, str]]:
    """Merge the rows whose INSERT lost a race into the contacts that won it, as updates;
    returns the tags those contacts have."""
    kept = [
        (values, row)
        for values, row in zip(plan.inserts, plan.inserted_rows, strict=True)
        if row.email not in skipped
    ]
    plan.inserts = [values for values, _ in kept]
    plan.inserted_rows = [row for _, row in kept]
    won = store.existing(sorted(skipped))
    existing.update(won)
    for row in rows:
        if row.email not in skipped:
            continue
        stored = existing.get(row.email)
        if stored is None:
            # Inserted and deleted again by others since: the row is reported, not lost.
            totals.refused.append((row.line, "the contact changed during the import: retry"))
            continue
        try:
            _plan_row(plan, row, stored, context)
        except InvalidInput as exc:
            totals.refused.append((row.line, str(exc)))
    return _stored_tags(store, [row for row in rows if row.email in won], won)


def _tags(
    store: BatchStore,
    rows: list[BatchRow],
    ids: dict[str, int],
    *,
    existing: dict[str, dict[str, Any]],
    inserted: dict[str, int],
    have: set[tuple[int, str]],
    plan: _Plan,
    context: _Context,
) -> None:
    fresh: list[tuple[int, str]] = []
    added: list[tuple[int, str]] = []
    for row in rows:
        if not row.tags or row.email not in ids:
            continue
        contact_id = ids[row.email]
        if row.email in inserted:
            fresh.extend(zip(repeat(contact_id), row.tags))
            continue
        new = [(contact_id, tag) for tag in row.tags if (contact_id, tag) not in have]
        added.extend(new)
        stored = existing.get(row.email)
        if new and stored is not None and row.email not in plan.changed:
            # A tag is a change too: the contact's updated_at moves.
            plan.changed.add(row.email)
            merged = [stored[name] for name in MERGED]
            plan.updates.append(_update(stored, merged, stored["attributes"], context))
    if fresh:
        store.insert_tags(fresh, fresh=True)
    if added:
        store.insert_tags(added, fresh=False)


def _consent(
    store: BatchStore,
    rows: list[BatchRow],
    ids: dict[str, int],
    existing: dict[str, dict[str, Any]],
    context: _Context,
) -> set[str]:
    """Record consent changes; returns the addresses whose status changed."""
    proof: list[tuple[Any, ...]] = []  # of contacts that existed
    fresh: list[tuple[Any, ...]] = []  # of contacts this batch inserted
    statuses: list[tuple[Any, ...]] = []
    changed: set[str] = set()
    method = context.source[:32]
    for row in rows:
        wanted = row.consent or context.consent
        stored = existing.get(row.email)
        current = "never" if stored is None else stored["email_status"]
        if wanted is None or wanted in {"never", current} or row.email not in ids:
            continue
        changed.add(row.email)
        contact_id = ids[row.email]
        record = (contact_id, "email", wanted, method, None, f"line {row.line}", context.now)
        if stored is None:
            # New contacts were inserted with this status already (_plan_row).
            fresh.append(record)
            continue
        proof.append(record)
        statuses.append((wanted, context.now, contact_id))
    if fresh:
        store.insert_consents(fresh, fresh=True)
    if proof:
        store.insert_consents(proof, fresh=False)
    if statuses:
        store.update_statuses(statuses)
    return changed


def _memberships(
    store: BatchStore,
    rows: list[BatchRow],
    ids: dict[str, int],
    inserted: dict[str, int],
    *,
    list_id: int,
    context: _Context,
) -> None:
    fresh: list[tuple[Any, ...]] = []
    old: list[tuple[Any, ...]] = []
    default = context.consent or ""
    now = context.now
    for row in rows:
        contact_id = ids.get(row.email)
        if contact_id is None:
            continue
        status = _MEMBER_STATUS.get(row.consent or default, "subscribed")
        member = (list_id, contact_id, status, now, now if status == "subscribed" else None)
        (fresh if row.email in inserted else old).append(member)
    if fresh:
        store.insert_members(fresh, fresh=True)
    if old:
        store.insert_members(old, fresh=False)
