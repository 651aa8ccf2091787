"""Dashboard users: people who run the shop, with an email, an argon2id password and a role.

Owns the ``admins`` table. Roles (docs/dashboard.md): ``owner`` does everything,
``marketer`` runs the marketing pages (no mail-server administration, no settings),
``viewer`` reads the marketing pages and changes nothing.

Invariants:
- Emails are stored lower-cased and stripped; one user per email.
- Only the argon2id PHC string of a password is stored; checking an unknown email costs
  the same as checking a known one (:class:`~courriel.mailstore.passwords.Passwords`).
- The last owner can be neither removed, disabled nor demoted: someone can always log in
  to administer the server.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from courriel.errors import AlreadyExists, InvalidInput, NotFound
from courriel.mailstore.passwords import Passwords
from courriel.storage.db import Database
from courriel.storage.models import admins

__all__ = [
    "ROLES",
    "Admin",
    "check_password",
    "check_role",
    "create_admin",
    "get_admin",
    "list_admins",
    "remove_admin",
    "set_password",
    "set_role",
    "verify_login",
]

ROLES = ("viewer", "marketer", "owner")  # in increasing power
MIN_PASSWORD = 10


@dataclass(frozen=True, slots=True, kw_only=True)
class Admin:
    """A dashboard user (never with the password hash)."""

    id: int
    email: str
    role: str
    created_at: datetime
    last_login_at: datetime | None

    def at_least(self, role: str) -> bool:
        """Does this user's role include ``role``'s rights?"""
        return ROLES.index(self.role) >= ROLES.index(role)


def check_role(role: str) -> str:
    """The role, or InvalidInput naming the roles."""
    if role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}", field="role")
    return role


def _email(email: str) -> str:
    value = email.strip().lower() if isinstance(email, str) else ""
    local, at, domain = value.partition("@")
    if not at or not local or not domain or len(value) > 320 or any(c.isspace() for c in value):
        raise InvalidInput(f"not an email address: {email!r}", field="email")
    return value


def _password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"a password has at least {MIN_PASSWORD} characters", field="password")
    return password


def _admin(row: Row[Any]) -> Admin:
    return Admin(
        id=row.id,
        email=row.email,
        role=row.role,
        created_at=row.created_at,
        last_login_at=row.last_login_at,
    )


async def create_admin(
    db: Database, passwords: Passwords, *, email: str, password: str, role: str, now: datetime
) -> Admin:
    """Add a dashboard user.

    Raises:
        InvalidInput: a bad email, a password under 10 characters, or an unknown role.
        AlreadyExists: a user with that email exists.
    """
    address, role = _email(email), check_role(role)
    hashed = await passwords.hash(_password(password))
    async with db.write() as conn:
        if await conn.scalar(select(admins.c.id).where(admins.c.email == address)):
            raise AlreadyExists(f"a dashboard user {address} already exists")
        new_id = await conn.scalar(
            admins.insert()
            .values(email=address, password_hash=hashed, role=role, created_at=now)
            .returning(admins.c.id)
        )
    return Admin(id=int(new_id or 0), email=address, role=role, created_at=now, last_login_at=None)


async def list_admins(db: Database) -> list[Admin]:
    """Every enabled dashboard user, by email."""
    async with db.read() as conn:
        rows = await conn.execute(
            select(admins).where(admins.c.disabled_at.is_(None)).order_by(admins.c.email)
        )
        return [_admin(row) for row in rows]


async def get_admin(db: Database, admin_id: int) -> Admin | None:
    """One enabled user by id, None when there is none."""
    async with db.read() as conn:
        row = (
            await conn.execute(
                select(admins).where(admins.c.id == admin_id, admins.c.disabled_at.is_(None))
            )
        ).first()
    return _admin(row) if row is not None else None


async def _checked(
    db: Database, passwords: Passwords, email: str, password: str
) -> tuple[Row[Any] | None, bool]:
    """The enabled user's row when ``password`` is theirs (else None), and "rehash"."""
    address = email.strip().lower() if isinstance(email, str) else ""
    async with db.read() as conn:
        row = (
            await conn.execute(
                select(admins).where(admins.c.email == address, admins.c.disabled_at.is_(None))
            )
        ).first()
    ok, rehash = await passwords.verify(row.password_hash if row else None, password)
    return (row, rehash) if row is not None and ok else (None, False)


async def verify_login(
    db: Database, passwords: Passwords, *, email: str, password: str, now: datetime
) -> Admin | None:
    """The user whose email and password these are (and record the login), else None.

    Costs one argon2id verification whether or not the email exists.
    """
    row, rehash = await _checked(db, passwords, email, password)
    if row is None:
        return None
    values: dict[str, object] = {"last_login_at": now}
    if rehash:
        values["password_hash"] = await passwords.hash(password)
    async with db.write() as conn:
        await conn.execute(update(admins).where(admins.c.id == row.id).values(**values))
    return _admin(row)


async def check_password(db: Database, passwords: Passwords, *, email: str, password: str) -> bool:
    """Is ``password`` the current password of the user ``email``? Writes nothing.

    For a logged-in user confirming who they are (changing their password): not a login,
    so ``last_login_at`` stays. Callers throttle it like a login (sessions.py).
    """
    row, _ = await _checked(db, passwords, email, password)
    return row is not None


async def _owners_left(conn: AsyncConnection, without: int) -> int:
    return int(
        await conn.scalar(
            select(func.count()).where(
                admins.c.role == "owner", admins.c.disabled_at.is_(None), admins.c.id != without
            )
        )
        or 0
    )


async def _find(conn: AsyncConnection, email: str) -> Row[Any]:
    row = (
        await conn.execute(
            select(admins).where(admins.c.email == _email(email), admins.c.disabled_at.is_(None))
        )
    ).first()
    if row is None:
        raise NotFound(f"no dashboard user {email.strip().lower()}")
    return row


async def set_role(db: Database, email: str, role: str) -> Admin:
    """Change a user's role. Raises NotFound, InvalidInput (unknown role, last owner)."""
    check_role(role)
    async with db.write() as conn:
        row = await _find(conn, email)
        if row.role == "owner" and role != "owner" and not await _owners_left(conn, row.id):
            raise InvalidInput("the last owner cannot be demoted", field="role")
        await conn.execute(update(admins).where(admins.c.id == row.id).values(role=role))
    found = _admin(row)
    return Admin(
        id=found.id,
        email=found.email,
        role=role,
        created_at=found.created_at,
        last_login_at=found.last_login_at,
    )


async def set_password(db: Database, passwords: Passwords, email: str, password: str) -> Admin:
    """Change a user's password; the user. Raises NotFound, InvalidInput.

    Sessions are not touched here: every caller then ends the user's other sessions
    (``sessions.end_sessions``; the dashboard keeps the one that made the change).
    """
    hashed = await passwords.hash(_password(password))
    async with db.write() as conn:
        row = await _find(conn, email)
        await conn.execute(update(admins).where(admins.c.id == row.id).values(password_hash=hashed))
    return _admin(row)


async def remove_admin(db: Database, email: str) -> None:
    """Delete a user and their sessions. Raises NotFound, InvalidInput (last owner)."""
    async with db.write() as conn:
        row = await _find(conn, email)
        if row.role == "owner" and not await _owners_left(conn, row.id):
            raise InvalidInput("the last owner cannot be removed", field="email")
        await conn.execute(admins.delete().where(admins.c.id == row.id))
