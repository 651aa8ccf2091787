"""Dashboard sessions and login throttling, in the database so that nodes share them.

Owns ``admin_sessions`` and ``login_failures``.

Invariants:
- The cookie carries a random 256-bit token; the database keeps only its SHA-256, so a
  leaked table opens no session. Each session has its own CSRF token (synchronizer token
  pattern, OWASP), compared in constant time.
- A session ends :data:`IDLE` after its last use or :data:`LIFETIME` after login, whichever
  comes first; ``last_seen_at`` is written at most once per :data:`TOUCH_EVERY`.
- A password change ends the user's other sessions (:func:`end_sessions`): if it was
  changed because a session was stolen, the stolen one stops working at once.
- Login throttling: more than :data:`MAX_FAILURES_EMAIL` failures for one email, or
  :data:`MAX_FAILURES_IP` from one client address, within :data:`WINDOW` refuse further
  attempts until the window ends; a successful login clears the email's count.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, delete, select, update

from courriel.storage.db import Database
from courriel.storage.models import admin_sessions, login_failures
from courriel.web.dashboard.admins import Admin, get_admin

__all__ = [
    "IDLE",
    "LIFETIME",
    "MAX_FAILURES_EMAIL",
    "MAX_FAILURES_IP",
    "WINDOW",
    "Session",
    "clear_failures",
    "csrf_matches",
    "end_session",
    "end_sessions",
    "load_session",
    "record_failure",
    "start_session",
    "throttled_for",
]

IDLE = timedelta(hours=12)
LIFETIME = timedelta(days=7)
TOUCH_EVERY = timedelta(minutes=5)
WINDOW = timedelta(minutes=15)
MAX_FAILURES_EMAIL = 5
MAX_FAILURES_IP = 20


@dataclass(frozen=True, slots=True, kw_only=True)
class Session:
    """A live session: its user and its forms' CSRF token."""

    id: str  # SHA-256 hex of the token
    admin: Admin
    csrf_token: str


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def csrf_matches(expected: str, given: str | None) -> bool:
    """Constant-time comparison of a presented CSRF token."""
    return bool(given) and hmac.compare_digest(expected.encode(), (given or "").encode())


async def start_session(db: Database, admin: Admin, *, now: datetime) -> tuple[str, Session]:
    """A new session for ``admin``: the cookie token (shown once) and the session."""
    token = secrets.token_urlsafe(32)
    session = Session(id=_digest(token), admin=admin, csrf_token=secrets.token_urlsafe(32))
    async with db.write() as conn:
        await conn.execute(
            delete(admin_sessions).where(admin_sessions.c.expires_at <= now)
        )  # expired ones go as new ones come
        await conn.execute(
            admin_sessions.insert().values(
                id=session.id,
                admin_id=admin.id,
                csrf_token=session.csrf_token,
                created_at=now,
                last_seen_at=now,
                expires_at=now + LIFETIME,
            )
        )
    return token, session


async def load_session(db: Database, token: str | None, *, now: datetime) -> Session | None:
    """The live session of a cookie token, None when unknown, expired or idle too long."""
    if not token or len(token) > 128:
        return None
    digest = _digest(token)
    async with db.read() as conn:
        row = (
            await conn.execute(select(admin_sessions).where(admin_sessions.c.id == digest))
        ).first()
    if row is None or row.expires_at <= now or row.last_seen_at + IDLE <= now:
        return None
    admin = await get_admin(db, row.admin_id)
    if admin is None:
        return None
    if now - row.last_seen_at >= TOUCH_EVERY:
        async with db.write() as conn:
            await conn.execute(
                update(admin_sessions).where(admin_sessions.c.id == digest).values(last_seen_at=now)
            )
    return Session(id=digest, admin=admin, csrf_token=row.csrf_token)


async def end_session(db: Database, session_id: str) -> None:
    """Log out: delete the session."""
    async with db.write() as conn:
        await conn.execute(delete(admin_sessions).where(admin_sessions.c.id == session_id))


async def end_sessions(db: Database, admin_id: int, *, keep: str | None = None) -> int:
    """End every session of a user but ``keep`` (a session id); how many ended.

    Called after a password change: the dashboard's own page keeps the session that made
    the change, ``courriel admin passwd`` ends them all.
    """
    condition = admin_sessions.c.admin_id == admin_id
    if keep is not None:
        condition = condition & (admin_sessions.c.id != keep)
    async with db.write() as conn:
        result = await conn.execute(delete(admin_sessions).where(condition))
    return int(result.rowcount or 0)


def _keys(ip: str, email: str) -> dict[str, int]:
    return {f"ip:{ip}": MAX_FAILURES_IP, f"email:{email.strip().lower()[:320]}": MAX_FAILURES_EMAIL}


async def throttled_for(db: Database, *, ip: str, email: str, now: datetime) -> timedelta | None:
    """How long logins for this address/email stay refused; None when they are allowed."""
    limits = _keys(ip, email)
    async with db.read() as conn:
        rows = (
            await conn.execute(select(login_failures).where(login_failures.c.key.in_(list(limits))))
        ).all()
    waits = [
        row.window_start + WINDOW - now
        for row in rows
        if row.failures >= limits[row.key] and row.window_start + WINDOW > now
    ]
    return max(waits) if waits else None


async def record_failure(db: Database, *, ip: str, email: str, now: datetime) -> None:
    """Count a failed login for the address and the email (a new window when the old ended)."""
    async with db.write() as conn:
        for key in _keys(ip, email):
            # Insert-or-ignore, then one UPDATE: concurrent failures on PostgreSQL neither
            # collide on the key nor lose a count (the UPDATE waits for the row lock).
            await conn.execute(
                db.insert_ignore(login_failures).values(key=key, failures=0, window_start=now)
            )
            expired = login_failures.c.window_start <= now - WINDOW
            await conn.execute(
                update(login_failures)
                .where(login_failures.c.key == key)
                .values(
                    failures=case((expired, 1), else_=login_failures.c.failures + 1),
                    window_start=case((expired, now), else_=login_failures.c.window_start),
                )
            )


async def clear_failures(db: Database, *, email: str) -> None:
    """Forget the failures of an email after a successful login."""
    key = f"email:{email.strip().lower()[:320]}"
    async with db.write() as conn:
        await conn.execute(delete(login_failures).where(login_failures.c.key == key))
