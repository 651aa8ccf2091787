"""Suppression: addresses, domains and address hashes that marketing never mails.

Owns the ``suppressions`` rows. Functions take an open ``AsyncConnection`` and run inside
the caller's transaction.

Invariants:
- Values are stored normalised: an ``address`` is the normalised address, a ``domain`` its
  lower-case A-label form, a ``hash`` the SHA-256 hex digest (lower case) of the normalised
  address (:func:`address_hash`), so an erased person leaves no readable address behind.
- A domain entry also covers its subdomains (``example.com`` blocks ``a@mx.example.com``).
- (kind, value) is unique: suppressing twice keeps the first entry and its reason.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import and_, delete, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from courriel.errors import AddressError, InvalidInput
from courriel.mail.address import normalize_domain
from courriel.marketing.dbutil import upsert_insert
from courriel.marketing.normalise import normalise_email
from courriel.storage.models.marketing import suppressions

__all__ = [
    "SUPPRESSION_KINDS",
    "Suppression",
    "SuppressionKind",
    "address_hash",
    "get_suppression",
    "is_forgotten",
    "is_suppressed",
    "list_suppressions",
    "normalise_value",
    "suppress",
    "suppression_to_dict",
    "unsuppress",
]

SuppressionKind = Literal["address", "domain", "hash"]
SUPPRESSION_KINDS: tuple[SuppressionKind, ...] = ("address", "domain", "hash")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_REASON = re.compile(r"^[a-z0-9_-]{1,32}$")


@dataclass(frozen=True, slots=True, kw_only=True)
class Suppression:
    """One suppression entry."""

    id: int
    kind: str
    value: str
    reason: str  # manual | bounce | complaint | forgotten | unsubscribe
    detail: str | None
    created_at: datetime


def address_hash(email: str) -> str:
    """SHA-256 hex of the normalised address (what a ``hash`` entry stores).

    Raises:
        InvalidInput: ``email`` is not an address.
    """
    return hashlib.sha256(normalise_email(email).encode("utf-8")).hexdigest()


def normalise_value(kind: str, value: str) -> str:
    """The stored form of a suppression value of ``kind``.

    Raises:
        InvalidInput: unknown kind, or a value that is not an address / domain / SHA-256 hex.
    """
    if kind == "address":
        return normalise_email(value, field="value")
    if kind == "domain":
        try:
            return normalize_domain(value)
        except AddressError as exc:
            raise InvalidInput(str(exc), field="value") from exc
    if kind == "hash":
        digest = value.strip().lower() if isinstance(value, str) else ""
        if not _HEX64.match(digest):
            raise InvalidInput("a hash is 64 hexadecimal digits (SHA-256)", field="value")
        return digest
    raise InvalidInput(f"kind must be one of {', '.join(SUPPRESSION_KINDS)}", field="kind")


def _domains(domain: str) -> list[str]:
    labels = domain.split(".")
    return [".".join(labels[i:]) for i in range(len(labels) - 1)] or [domain]


async def is_suppressed(conn: AsyncConnection, email: str) -> bool:
    """True when the address, its domain (or a parent domain), or its hash is suppressed.

    Raises:
        InvalidInput: ``email`` is not an address.
    """
    address = normalise_email(email)
    digest = hashlib.sha256(address.encode("utf-8")).hexdigest()
    domain = address.rpartition("@")[2]
    kind, value = suppressions.c.kind, suppressions.c.value
    statement = (
        select(suppressions.c.id)
        .where(
            or_(
                and_(kind == "address", value == address),
                and_(kind == "hash", value == digest),
                and_(kind == "domain", value.in_(_domains(domain))),
            )
        )
        .limit(1)
    )
    return (await conn.execute(statement)).first() is not None


async def is_forgotten(conn: AsyncConnection, email: str) -> bool:
    """True when the address was erased on request (a ``hash`` entry exists for it)."""
    statement = select(suppressions.c.id).where(
        suppressions.c.kind == "hash", suppressions.c.value == address_hash(email)
    )
    return (await conn.execute(statement)).first() is not None


async def suppress(
    conn: AsyncConnection,
    *,
    kind: SuppressionKind,
    value: str,
    reason: str,
    detail: str | None = None,
    now: datetime,
) -> None:
    """Add a suppression entry; a no-op when (kind, value) is suppressed already.

    Raises:
        InvalidInput: a malformed kind, value or reason (1–32 of ``a-z 0-9 _ -``).
    """
    stored = normalise_value(kind, value)
    if not isinstance(reason, str) or not _REASON.match(reason):
        raise InvalidInput("reason is 1 to 32 of a-z, 0-9, _ and -", field="reason")
    statement = (
        upsert_insert(conn, suppressions)
        .values(kind=kind, value=stored, reason=reason, detail=detail, created_at=now)
        .on_conflict_do_nothing(index_elements=["kind", "value"])
    )
    await conn.execute(statement)


def _entry(row: Any) -> Suppression:
    return Suppression(
        id=int(row["id"]),
        kind=row["kind"],
        value=row["value"],
        reason=row["reason"],
        detail=row["detail"],
        created_at=row["created_at"],
    )


async def get_suppression(
    conn: AsyncConnection, *, kind: SuppressionKind, value: str
) -> Suppression | None:
    """The entry of (kind, value), None when there is none.

    Raises:
        InvalidInput: a malformed kind or value.
    """
    stored = normalise_value(kind, value)
    row = (
        (
            await conn.execute(
                select(suppressions).where(
                    suppressions.c.kind == kind, suppressions.c.value == stored
                )
            )
        )
        .mappings()
        .first()
    )
    return _entry(row) if row is not None else None


async def unsuppress(conn: AsyncConnection, *, kind: SuppressionKind, value: str) -> bool:
    """Remove an entry; True when one was removed.

    Raises:
        InvalidInput: a malformed kind or value.
    """
    stored = normalise_value(kind, value)
    result = await conn.execute(
        delete(suppressions).where(suppressions.c.kind == kind, suppressions.c.value == stored)
    )
    return bool(result.rowcount)


async def list_suppressions(
    conn: AsyncConnection,
    *,
    kind: SuppressionKind | None = None,
    after_id: int = 0,
    limit: int = 100,
) -> list[Suppression]:
    """Entries in id order after the cursor ``after_id``, optionally of one kind.

    Raises:
        InvalidInput: unknown kind or ``limit`` outside 1–1000.
    """
    if not 1 <= limit <= 1000:
        raise InvalidInput("limit must be 1 to 1000", field="limit")
    statement = select(suppressions).where(suppressions.c.id > after_id)
    if kind is not None:
        if kind not in SUPPRESSION_KINDS:
            raise InvalidInput(f"kind must be one of {', '.join(SUPPRESSION_KINDS)}", field="kind")
        statement = statement.where(suppressions.c.kind == kind)
    rows = await conn.execute(statement.order_by(suppressions.c.id).limit(limit))
    return [_entry(row) for row in rows.mappings()]


def suppression_to_dict(entry: Suppression) -> dict[str, Any]:
    """The entry as a JSON-able dict."""
    return {
        "id": entry.id,
        "kind": entry.kind,
        "value": entry.value,
        "reason": entry.reason,
        "detail": entry.detail,
        "created_at": entry.created_at.isoformat(),
    }
