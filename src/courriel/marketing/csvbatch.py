"""One write transaction of a contact import: a batch of parsed rows, set-based.

Owns the SQL of :mod:`courriel.marketing.csvio`. Runs on a synchronous connection
(:meth:`courriel.storage.db.Database.run_write`: on SQLite, the writer thread), so it does
no I/O of its own and no per-row query: one SELECT of the batch's contacts, one of their
tags, one of the erased-address hashes, then executemany INSERTs and UPDATEs. On
PostgreSQL, addresses another transaction inserted after that SELECT are read once more
and merged as updates (the INSERT's RETURNING says which were skipped).

Invariants: the merge rules of :func:`courriel.marketing.contacts.upsert_contact`
(None leaves data, attributes merge, tags add, ``source`` keeps its first value,
``updated_at`` moves only on change) and of :mod:`courriel.marketing.consent` (a proof row
exactly when a status changes, in step with ``contacts.email_status``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ARRAY, ColumnElement, Select, Table, any_, bindparam, insert, select, update
from sqlalchemy.engine import Connection, RowMapping

from courriel.errors import InvalidInput
from courriel.marketing.csvcopy import (
    copy_insert,
    copy_insert_contacts,
    copy_insert_ignore,
)
from courriel.marketing.dbutil import executemany, upsert_insert
from courriel.marketing.normalise import check_attributes
from courriel.storage.models.marketing import (
    consents,
    contact_tags,
    contacts,
    list_members,
    suppressions,
)

__all__ = ["BatchRow", "BatchTotals", "write_batch"]

_MERGED = (
    "first_name",
    "last_name",
    "phone",
    "country",
    "region",
    "city",
    "postal_code",
    "time_zone",
)
# Set-based reads of a batch, one statement per dialect (see _reads).
_COLUMNS = (
    contacts.c.id,
    contacts.c.email,
    contacts.c.source,
    contacts.c.email_status,
    contacts.c.attributes,
    *(contacts.c[name] for name in _MERGED),
)


def _member(column: ColumnElement[Any], name: str, postgresql: bool) -> ColumnElement[bool]:
    """``column`` is one of the batch's values, bound as the parameter ``name``.

    SQLite: an expanding IN, one placeholder per value. PostgreSQL: ``= ANY(array)``, one
    parameter whatever the batch size; an expanding IN of 1,000 addresses made SQLAlchemy
    render and cast 1,000 placeholders on every batch (~30 µs of client CPU per imported
    row, bench/contacts_import.py profile).
    """
    if postgresql:
        return column == any_(bindparam(name, type_=ARRAY(column.type)))
    return column.in_(bindparam(name, expanding=True))


def _reads(postgresql: bool) -> dict[str, Select[Any]]:
    return {
        "existing": select(*_COLUMNS).where(_member(contacts.c.email, "emails", postgresql)),
        "ids": select(contacts.c.email, contacts.c.id).where(
            _member(contacts.c.email, "emails", postgresql)
        ),
        "forgotten": select(suppressions.c.value).where(
            suppressions.c.kind == "hash", _member(suppressions.c.value, "digests", postgresql)
        ),
        "tags": select(contact_tags.c.contact_id, contact_tags.c.tag).where(
            _member(contact_tags.c.contact_id, "ids", postgresql)
        ),
    }


_READS = {False: _reads(False), True: _reads(True)}


def _read(conn: Connection, name: str) -> Select[Any]:
    return _READS[conn.dialect.name == "postgresql"][name]


_MEMBER_STATUS = {"unsubscribed": "unsubscribed", "pending": "pending"}


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchRow:
    """A parsed, normalised CSV row."""

    line: int
    email: str  # normalised
    digest: str  # SHA-256 hex of ``email`` (the erased-address check)
    fields: dict[str, Any]  # normalised columns it sets (None: clear)
    attributes: dict[str, Any]
    tags: tuple[str, ...]
    consent: str | None  # the row's email_consent cell


@dataclass(slots=True, kw_only=True)
class BatchTotals:
    """What one batch did."""

    imported: int = 0
    updated: int = 0
    unchanged: int = 0
    refused: list[tuple[int, str]] = field(default_factory=list)  # (line, message)


@dataclass(slots=True)
class _Plan:
    inserts: list[dict[str, Any]] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)
    changed: set[str] = field(default_factory=set)  # emails of existing contacts that change


def write_batch(
    conn: Connection,
    rows: list[BatchRow],
    *,
    list_id: int | None,
    consent: str | None,
    source: str,
    now: datetime,
) -> BatchTotals:
    """Write ``rows`` (distinct addresses) in the caller's transaction."""
    totals = BatchTotals()
    if conn.dialect.name == "postgresql":
        # The batch reads are prepared statements. After five runs PostgreSQL may keep a
        # generic plan made while the table was small (a sequential scan), for good when
        # nothing runs ANALYZE: each batch then read the whole contacts table (measured:
        # 0.5-1.6 s per 1,000-row SELECT at 50,000 contacts). Plan with the real values.
        conn.exec_driver_sql("SET LOCAL plan_cache_mode = force_custom_plan")
    rows = _drop_forgotten(conn, rows, totals)
    if not rows:
        return totals
    existing = {
        row["email"]: row
        for row in conn.execute(
            _read(conn, "existing"), {"emails": [r.email for r in rows]}
        ).mappings()
    }
    plan = _Plan()
    for row in rows:
        try:
            _plan_row(plan, row, existing.get(row.email), consent=consent, source=source, now=now)
        except InvalidInput as exc:
            totals.refused.append((row.line, str(exc)))
    skipped, inserted = _insert(conn, plan.inserts)
    if skipped:
        _replan_skipped(
            conn,
            plan,
            rows,
            existing=existing,
            skipped=skipped,
            totals=totals,
            consent=consent,
            source=source,
            now=now,
        )
    refused = {line for line, _ in totals.refused}
    rows = [row for row in rows if row.line not in refused]
    ids = _ids(conn, rows, existing, inserted)
    _tags(conn, rows, ids, existing, plan=plan, now=now)
    if plan.updates:
        # Row by row on both engines: an UPDATE … FROM a staging table lets PostgreSQL pick
        # a hash join over the whole contacts table when its statistics are stale, which
        # made each batch cost O(table) (measured: the import became quadratic).
        conn.execute(update(contacts).where(contacts.c.id == bindparam("contact_id")), plan.updates)
    consented = _consent(conn, rows, ids, existing, consent=consent, source=source, now=now)
    plan.changed.update(email for email in consented if email in existing)
    if list_id is not None:
        _memberships(conn, rows, ids, list_id=list_id, consent=consent, now=now)
    totals.imported += len(plan.inserts)
    totals.updated += len(plan.changed)
    totals.unchanged += len(existing) - len(plan.changed)
    return totals


def _insert(conn: Connection, inserts: list[dict[str, Any]]) -> tuple[set[str], dict[str, int]]:
    """Insert the new contacts: the addresses another transaction inserted first, and the ids
    of those inserted here when the engine returns them (PostgreSQL).

    On PostgreSQL a concurrent writer (the API, a webhook, another import) may insert an
    address between this batch's SELECT and its INSERT: ON CONFLICT DO NOTHING skips the
    row, and RETURNING tells which. On SQLite the batch runs in a ``BEGIN IMMEDIATE``
    transaction (:meth:`Database.run_write`), which holds the only write lock from before
    the SELECT, so nothing can come in between.
    """
    if not inserts:
        return set(), {}
    if conn.dialect.name == "postgresql":
        inserted = copy_insert_contacts(conn, contacts, inserts)
        return {values["email"] for values in inserts} - inserted.keys(), inserted
    statement = upsert_insert(conn, contacts).on_conflict_do_nothing(index_elements=["email"])
    executemany(conn, statement, inserts, table=contacts)
    return set(), {}


def _replan_skipped(
    conn: Connection,
    plan: _Plan,
    rows: list[BatchRow],
    *,
    existing: dict[str, RowMapping],
    skipped: set[str],
    totals: BatchTotals,
    consent: str | None,
    source: str,
    now: datetime,
) -> None:
    """Merge the rows whose INSERT lost a race into the contacts that won it, as updates."""
    plan.inserts = [values for values in plan.inserts if values["email"] not in skipped]
    won = conn.execute(_read(conn, "existing"), {"emails": sorted(skipped)}).mappings()
    existing.update({stored["email"]: stored for stored in won})
    for row in rows:
        if row.email not in skipped:
            continue
        stored = existing.get(row.email)
        if stored is None:
            # Inserted and deleted again by others since: the row is reported, not lost.
            totals.refused.append((row.line, "the contact changed during the import: retry"))
            continue
        try:
            _plan_row(plan, row, stored, consent=consent, source=source, now=now)
        except InvalidInput as exc:
            totals.refused.append((row.line, str(exc)))


def _drop_forgotten(conn: Connection, rows: list[BatchRow], totals: BatchTotals) -> list[BatchRow]:
    found = set(
        conn.execute(_read(conn, "forgotten"), {"digests": [row.digest for row in rows]}).scalars()
    )
    if not found:
        return rows
    for row in rows:
        if row.digest in found:
            totals.refused.append((row.line, "this address was erased on request (GDPR)"))
    return [row for row in rows if row.digest not in found]


def _plan_row(
    plan: _Plan,
    row: BatchRow,
    stored: RowMapping | None,
    *,
    consent: str | None,
    source: str,
    now: datetime,
) -> None:
    if stored is None:
        # A new contact is inserted with its consent status already set (the proof row is
        # written by _consent): updating it afterwards rewrote every new row and its indexes
        # (bench/contacts_import.py on PostgreSQL: 2.3 s of 50,000 UPDATEs per 50,000 rows).
        values: dict[str, Any] = dict.fromkeys(_MERGED)
        values.update(row.fields)
        plan.inserts.append(
            {
                **values,
                "email": row.email,
                "attributes": row.attributes,
                "source": source,
                "email_status": row.consent or consent or "never",
                "sms_status": "never",
                "order_count": 0,
                "total_spent_minor": 0,
                "created_at": now,
                "updated_at": now,
            }
        )
        return
    merged = {name: row.fields.get(name, stored[name]) for name in _MERGED}
    attributes = dict(stored["attributes"] or {})
    if row.attributes:
        attributes = check_attributes({**attributes, **row.attributes})
    if any(merged[name] != stored[name] for name in _MERGED) or attributes != stored["attributes"]:
        plan.changed.add(row.email)
        plan.updates.append(_update(stored, merged, attributes, now))


def _update(
    stored: RowMapping, merged: dict[str, Any], attributes: dict[str, Any], now: datetime
) -> dict[str, Any]:
    return {
        **merged,
        "contact_id": stored["id"],
        "attributes": attributes,
        "source": stored["source"],
        "updated_at": now,
    }


def _ids(
    conn: Connection,
    rows: list[BatchRow],
    existing: dict[str, RowMapping],
    inserted: dict[str, int],
) -> dict[str, int]:
    ids = {email: int(row["id"]) for email, row in existing.items()}
    ids.update(inserted)
    new = [row.email for row in rows if row.email not in ids]
    if new:
        result = conn.execute(_read(conn, "ids"), {"emails": new})
        ids.update({email: int(contact_id) for email, contact_id in result})
    return ids


def _tags(
    conn: Connection,
    rows: list[BatchRow],
    ids: dict[str, int],
    existing: dict[str, RowMapping],
    *,
    plan: _Plan,
    now: datetime,
) -> None:
    tagged = [row for row in rows if row.tags and row.email in ids]
    if not tagged:
        return
    old_ids = [ids[row.email] for row in tagged if row.email in existing]
    have: set[tuple[int, str]] = set()
    if old_ids:
        result = conn.execute(_read(conn, "tags"), {"ids": old_ids})
        have = {(int(contact_id), tag) for contact_id, tag in result}
    new_tags = []
    for row in tagged:
        fresh = [(ids[row.email], tag) for tag in row.tags if (ids[row.email], tag) not in have]
        new_tags.extend(fresh)
        stored = existing.get(row.email)
        if fresh and stored is not None and row.email not in plan.changed:
            # A tag is a change too: the contact's updated_at moves.
            plan.changed.add(row.email)
            plan.updates.append(
                _update(stored, {n: stored[n] for n in _MERGED}, stored["attributes"], now)
            )
    if new_tags:
        _insert_ignore(
            conn,
            contact_tags,
            [{"contact_id": contact_id, "tag": tag} for contact_id, tag in new_tags],
            conflict=["contact_id", "tag"],
        )


def _consent(
    conn: Connection,
    rows: list[BatchRow],
    ids: dict[str, int],
    existing: dict[str, RowMapping],
    *,
    consent: str | None,
    source: str,
    now: datetime,
) -> set[str]:
    """Record consent changes; returns the addresses whose status changed."""
    proof: list[dict[str, Any]] = []
    changed: dict[str, str] = {}  # address -> its new status
    for row in rows:
        wanted = row.consent or consent
        stored = existing.get(row.email)
        current = "never" if stored is None else stored["email_status"]
        if wanted is None or wanted in {"never", current} or row.email not in ids:
            continue
        changed[row.email] = wanted
        proof.append(
            {
                "contact_id": ids[row.email],
                "channel": "email",
                "status": wanted,
                "method": source[:32],
                "ip": None,
                "detail": f"line {row.line}",
                "recorded_at": now,
            }
        )
    if not proof:
        return set()
    # New contacts were inserted with this status already (_plan_row): only existing ones move.
    statuses = [
        {"b_id": ids[email], "email_status": wanted, "updated_at": now}
        for email, wanted in changed.items()
        if email in existing
    ]
    if conn.dialect.name == "postgresql":
        copy_insert(conn, consents, proof)
    else:
        executemany(conn, insert(consents), proof, table=consents)
    if statuses:
        executemany(
            conn,
            update(contacts).where(contacts.c.id == bindparam("b_id")),
            statuses,
            table=contacts,
        )
    return set(changed)


def _memberships(
    conn: Connection,
    rows: list[BatchRow],
    ids: dict[str, int],
    *,
    list_id: int,
    consent: str | None,
    now: datetime,
) -> None:
    members = []
    for row in rows:
        if row.email not in ids:
            continue
        status = _MEMBER_STATUS.get(row.consent or consent or "", "subscribed")
        members.append(
            {
                "list_id": list_id,
                "contact_id": ids[row.email],
                "status": status,
                "added_at": now,
                "confirmed_at": now if status == "subscribed" else None,
            }
        )
    if members:
        _insert_ignore(conn, list_members, members, conflict=["list_id", "contact_id"])


def _insert_ignore(
    conn: Connection, table: Table, rows: list[dict[str, Any]], *, conflict: list[str]
) -> None:
    """INSERT … ON CONFLICT DO NOTHING of ``rows``: COPY on PostgreSQL, executemany on SQLite."""
    if conn.dialect.name == "postgresql":
        copy_insert_ignore(conn, table, rows, conflict=conflict)
        return
    statement = upsert_insert(conn, table).on_conflict_do_nothing(index_elements=conflict)
    executemany(conn, statement, rows, table=table)
