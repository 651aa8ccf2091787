"""API keys of the REST API: making, checking, listing and revoking them.

A key is ``ck_`` followed by 32 random bytes, URL-safe base64 (46 characters). It is shown
once, when made; the database keeps only its SHA-256 (hex) and its first characters (the
prefix, so an operator can recognise a key in a list).

Invariants:
- The secret is never stored nor logged. A presented key is checked by looking up its
  hash, so no comparison of secrets runs in time that depends on them.
- A revoked key never verifies again; names are unique, even among revoked keys.
- Scopes are a closed set (:data:`SCOPES`); ``*`` grants every scope.
- ``last_used_at`` is written at most once per :data:`TOUCH_EVERY` per key, so a busy API
  client does not turn every request into a write transaction.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from courriel.errors import AlreadyExists, InvalidInput, NotFound
from courriel.storage.db import Database
from courriel.storage.models.marketing import api_keys

__all__ = [
    "ALL_SCOPES",
    "KEY_PREFIX",
    "SCOPES",
    "TOUCH_EVERY",
    "ApiKeyInfo",
    "create_key",
    "list_keys",
    "parse_scopes",
    "revoke_key",
    "verify_key",
]

KEY_PREFIX = "ck_"
ALL_SCOPES = "*"
SCOPES: frozenset[str] = frozenset(
    {
        "contacts:read",
        "contacts:write",
        "lists:read",
        "lists:write",
        "segments:read",
        "segments:write",
        "events:write",
        "products:read",
        "orders:read",
        "suppression:read",
        "suppression:write",
        "templates:read",
        "templates:write",
        "messages:read",
        "messages:write",
        "campaigns:read",
        "campaigns:write",
    }
)
TOUCH_EVERY = timedelta(minutes=1)

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_SHOWN_PREFIX = 10  # "ck_" and 7 random characters
_MAX_PRESENTED = 128


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiKeyInfo:
    """What is known of a key, never the secret itself."""

    id: int
    name: str
    prefix: str  # the key's first characters, e.g. "ck_AbC12xY"
    scopes: frozenset[str]  # may hold "*": every scope
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    def allows(self, scope: str) -> bool:
        """True when this key grants ``scope`` (and is not revoked)."""
        if self.revoked_at is not None:
            return False
        return ALL_SCOPES in self.scopes or scope in self.scopes


def parse_scopes(scopes: Iterable[str]) -> frozenset[str]:
    """Check scope names (space or comma separated items allowed).

    Raises:
        InvalidInput: an unknown scope (field ``scopes``), or none at all.
    """
    found: set[str] = set()
    for item in scopes:
        for scope in re.split(r"[\s,]+", item.strip()):
            if not scope:
                continue
            if scope != ALL_SCOPES and scope not in SCOPES:
                known = ", ".join(sorted(SCOPES))
                raise InvalidInput(
                    f"unknown scope {scope!r} (known: {known}, or *)", field="scopes"
                )
            found.add(scope)
    if not found:
        raise InvalidInput("at least one scope is needed", field="scopes")
    return frozenset(found)


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _info(row: Mapping[Any, Any]) -> ApiKeyInfo:
    return ApiKeyInfo(
        id=row["id"],
        name=row["name"],
        prefix=row["prefix"],
        scopes=frozenset(row["scopes"].split()),
        created_at=row["created_at"],
        last_used_at=row["last_used_at"],
        revoked_at=row["revoked_at"],
    )


def _now(now: datetime | None) -> datetime:
    return now if now is not None else datetime.now(UTC)


async def create_key(
    db: Database, name: str, scopes: Iterable[str], *, now: datetime | None = None
) -> tuple[ApiKeyInfo, str]:
    """Make a key named ``name`` granting ``scopes``.

    Args:
        db: the database.
        name: 1-64 characters: letters, digits, ``.``, ``_``, ``-`` (not first).
        scopes: scope names from :data:`SCOPES`, or ``*``.
        now: the creation time (default: the current time).

    Returns:
        The key's record and the secret key, which is shown only this once.

    Raises:
        InvalidInput: a bad name (field ``name``) or scope (field ``scopes``).
        AlreadyExists: a key has this name already.
    """
    if not _NAME.fullmatch(name):
        raise InvalidInput(
            "a key name is 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit",
            field="name",
        )
    granted = parse_scopes(scopes)
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    values = {
        "name": name,
        "prefix": secret[:_SHOWN_PREFIX],
        "key_hash": _hash(secret),
        "scopes": " ".join(sorted(granted)),
        "created_at": _now(now),
        "last_used_at": None,
        "revoked_at": None,
    }
    async with db.write() as conn:
        taken = await conn.execute(select(api_keys.c.id).where(api_keys.c.name == name))
        if taken.first() is not None:
            raise AlreadyExists(f"an API key named {name!r} exists already")
        result = await conn.execute(api_keys.insert().values(values).returning(api_keys.c.id))
        key_id = int(result.scalar_one())
    return _info({"id": key_id, **values}), secret


async def verify_key(
    db: Database, presented: str, *, now: datetime | None = None
) -> ApiKeyInfo | None:
    """The record of the live key ``presented``, or None when it is unknown or revoked.

    Also records the time of use (at most once per :data:`TOUCH_EVERY`).
    """
    if not presented.startswith(KEY_PREFIX) or len(presented) > _MAX_PRESENTED:
        return None
    digest = _hash(presented)
    async with db.read() as conn:
        row = (
            (await conn.execute(select(api_keys).where(api_keys.c.key_hash == digest)))
            .mappings()
            .first()
        )
    if row is None or row["revoked_at"] is not None:
        return None
    info = _info(row)
    when = _now(now)
    if info.last_used_at is None or when - info.last_used_at >= TOUCH_EVERY:
        async with db.write() as conn:
            await conn.execute(
                update(api_keys).where(api_keys.c.id == info.id).values(last_used_at=when)
            )
    return info


async def list_keys(db: Database) -> list[ApiKeyInfo]:
    """Every key, revoked ones included, by name."""
    async with db.read() as conn:
        rows = (await conn.execute(select(api_keys).order_by(api_keys.c.name))).mappings().all()
    return [_info(row) for row in rows]


async def revoke_key(db: Database, name: str, *, now: datetime | None = None) -> bool:
    """Revoke the key named ``name``.

    Returns:
        True when it was live, False when it was revoked already.

    Raises:
        NotFound: no key has this name.
    """
    async with db.write() as conn:
        row = (
            (
                await conn.execute(
                    select(api_keys.c.id, api_keys.c.revoked_at).where(api_keys.c.name == name)
                )
            )
            .mappings()
            .first()
        )
        if row is None:
            raise NotFound(f"no API key named {name!r}")
        if row["revoked_at"] is not None:
            return False
        await conn.execute(
            update(api_keys).where(api_keys.c.id == row["id"]).values(revoked_at=_now(now))
        )
    return True
