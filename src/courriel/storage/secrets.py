"""Named random secrets shared through the database (see :mod:`courriel.storage.models.system`).

Invariant: a secret never changes once made; two nodes racing to make it both end up
reading the one row that won (insert-or-ignore, then read).
"""

from __future__ import annotations

import secrets as _random

from sqlalchemy import select

from courriel.storage.db import Database
from courriel.storage.models import secrets, utcnow

__all__ = ["shared_secret"]


async def shared_secret(db: Database, name: str, *, size: int = 32) -> bytes:
    """The secret called ``name``, made from ``size`` random octets the first time.

    Args:
        db: the opened, migrated database.
        name: what the secret is for (``"links"``).
        size: octets of a new secret.

    Returns:
        The stored octets.
    """
    async with db.read() as conn:
        value = await conn.scalar(select(secrets.c.value).where(secrets.c.name == name))
    if value is not None:
        return bytes(value)
    async with db.write() as conn:
        await conn.execute(
            db.insert_ignore(secrets).values(
                name=name, value=_random.token_bytes(size), created_at=utcnow()
            )
        )
        value = await conn.scalar(select(secrets.c.value).where(secrets.c.name == name))
    assert value is not None  # inserted above, or by the node that won the race
    return bytes(value)
