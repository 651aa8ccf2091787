"""The shops connected to courriel: their kind, their name in the hook URL, their secret.

Owns the ``integrations`` table and reading the ``webhook_receipts`` it collects.

Invariants:
- A name is 1 to 50 characters of ``[a-z0-9-]``: it appears in the webhook URL and, as
  ``"<kind>:<name>"`` (at most 62 characters), in the ``source`` of contacts and events
  (64-character columns).
- The secret is the HMAC key the shop signs webhooks with. It is stored as given, never
  logged, and never part of a ``repr``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from sqlalchemy import delete, insert, select
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from courriel.errors import AlreadyExists, InvalidInput, NotFound
from courriel.storage.db import Database
from courriel.storage.models.marketing import integrations, webhook_receipts

__all__ = [
    "KINDS",
    "Integration",
    "Kind",
    "Receipt",
    "add_integration",
    "check_name",
    "get_by_name",
    "list_integrations",
    "list_receipts",
    "load_integration",
    "remove_integration",
]

Kind = Literal["shopify", "woocommerce"]
KINDS: tuple[Kind, ...] = ("shopify", "woocommerce")
NAME = re.compile(r"[a-z0-9-]{1,50}")
MAX_SECRET = 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class Integration:
    """A connected shop."""

    id: int
    kind: Kind
    name: str
    secret: str = field(repr=False)  # the HMAC key; never shown again after ``add``
    created_at: datetime

    @property
    def source(self) -> str:
        """The ``source`` of the contacts and events this shop writes: ``"shopify:NAME"``."""
        return f"{self.kind}:{self.name}"

    def hook_path(self) -> str:
        """The webhook path the shop posts to: ``/hooks/<kind>/<name>``."""
        return f"/hooks/{self.kind}/{self.name}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Receipt:
    """One webhook the shop sent, as recorded."""

    delivery_id: str
    topic: str
    status: str  # applied | ignored | rejected
    detail: str
    received_at: datetime


def check_name(name: str) -> str:
    """The name if it is 1 to 50 characters of ``[a-z0-9-]``.

    Raises:
        InvalidInput: anything else (field "name").
    """
    if not NAME.fullmatch(name):
        raise InvalidInput("a name is 1 to 50 characters of a-z, 0-9 and '-'", field="name")
    return name


def _check_kind(kind: str) -> Kind:
    for known in KINDS:
        if kind == known:
            return known
    raise InvalidInput(f"unknown integration kind {kind!r} (shopify or woocommerce)", field="kind")


def _check_secret(secret: str) -> str:
    secret = secret.strip()
    if not secret:
        raise InvalidInput("the secret is empty", field="secret")
    if len(secret) > MAX_SECRET or any(ord(c) < 32 for c in secret):
        raise InvalidInput(
            f"the secret is at most {MAX_SECRET} printable characters", field="secret"
        )
    return secret


def _integration(row: RowMapping) -> Integration:
    return Integration(
        id=int(row["id"]),
        kind=_check_kind(row["kind"]),
        name=row["name"],
        secret=row["secret"],
        created_at=row["created_at"],
    )


async def add_integration(
    db: Database, kind: str, name: str, secret: str, *, now: datetime
) -> Integration:
    """Connect a shop.

    Raises:
        InvalidInput: unknown kind, bad name, empty secret (``field`` names which).
        AlreadyExists: an integration has this name.
    """
    checked_kind = _check_kind(kind)
    check_name(name)
    checked_secret = _check_secret(secret)
    async with db.write() as conn:
        # SQLite serialises writers; on PostgreSQL a concurrent add of the same name
        # ends in the unique constraint (a StorageError), which is as good a refusal.
        if await load_integration(conn, name) is not None:
            raise AlreadyExists(f"integration {name!r} exists already")
        stmt = insert(integrations).values(
            kind=checked_kind, name=name, secret=checked_secret, created_at=now
        )
        new_id = (await conn.execute(stmt.returning(integrations.c.id))).scalar_one()
    return Integration(
        id=int(new_id), kind=checked_kind, name=name, secret=checked_secret, created_at=now
    )


async def load_integration(conn: AsyncConnection, name: str) -> Integration | None:
    """The integration called ``name`` in the caller's transaction, or None."""
    row = (
        (await conn.execute(select(integrations).where(integrations.c.name == name)))
        .mappings()
        .first()
    )
    return None if row is None else _integration(row)


async def get_by_name(db: Database, name: str) -> Integration:
    """The integration called ``name``.

    Raises:
        NotFound: no such integration.
    """
    async with db.read() as conn:
        found = await load_integration(conn, name)
    if found is None:
        raise NotFound(f"no integration {name!r}")
    return found


async def list_integrations(db: Database) -> list[Integration]:
    """Every integration, by name."""
    async with db.read() as conn:
        rows = (await conn.execute(select(integrations).order_by(integrations.c.name))).mappings()
        return [_integration(row) for row in rows]


async def remove_integration(db: Database, name: str) -> None:
    """Disconnect a shop: its receipts and customer links go; orders and products stay.

    Raises:
        NotFound: no such integration.
    """
    async with db.write() as conn:
        result = await conn.execute(delete(integrations).where(integrations.c.name == name))
    if not result.rowcount:
        raise NotFound(f"no integration {name!r}")


async def list_receipts(db: Database, name: str, *, limit: int = 50) -> list[Receipt]:
    """The shop's latest webhooks, newest first.

    Raises:
        NotFound: no such integration.
    """
    found = await get_by_name(db, name)
    async with db.read() as conn:
        rows = await conn.execute(
            select(webhook_receipts)
            .where(webhook_receipts.c.integration_id == found.id)
            .order_by(webhook_receipts.c.received_at.desc(), webhook_receipts.c.id.desc())
            .limit(max(1, min(limit, 1000)))
        )
        return [
            Receipt(
                delivery_id=row.delivery_id,
                topic=row.topic,
                status=row.status,
                detail=row.detail,
                received_at=row.received_at,
            )
            for row in rows
        ]
