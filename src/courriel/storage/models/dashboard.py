"""Tables of the web dashboard: its users, their sessions, login throttling, daily totals.

Dashboard users (``admins``) are people who run the shop: they log in with an email and
a password (argon2id PHC string) and have one role (owner, marketer or viewer; see
docs/dashboard.md). A session is one ``admin_sessions`` row keyed by the SHA-256 of the
cookie's random token, so the database never holds a usable token; it carries the CSRF
token of its forms. ``login_failures`` counts failed logins per client address and per
email in a window (rate limiting that holds across nodes sharing PostgreSQL).
``daily_stats`` is the pre-aggregated daily total of each mail metric the overview charts
(sent, delivered, opened, clicked, revenue_minor, bounced, complained, unsubscribed): one
row per (day, metric), bumped in the transaction of the event it counts, never counted on
page load.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

from courriel.storage.models.base import UTCDateTime, metadata
from courriel.storage.models.marketing import Id

__all__ = ["admin_sessions", "admins", "daily_stats", "login_failures"]

admins = Table(
    "admins",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("email", String(320), nullable=False, unique=True),  # normalised (lower-case)
    Column("password_hash", Text, nullable=False),  # argon2id PHC string
    Column("role", String(16), nullable=False),  # "owner" | "marketer" | "viewer"
    Column("created_at", UTCDateTime(), nullable=False),
    Column("last_login_at", UTCDateTime(), nullable=True),
    Column("disabled_at", UTCDateTime(), nullable=True),
)

admin_sessions = Table(
    "admin_sessions",
    metadata,
    Column("id", String(64), primary_key=True),  # SHA-256 hex of the cookie's token
    Column("admin_id", Id, ForeignKey("admins.id", ondelete="CASCADE"), nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("last_seen_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Index("ix_admin_sessions_admin_id", "admin_id"),
    Index("ix_admin_sessions_expires_at", "expires_at"),
)

login_failures = Table(
    "login_failures",
    metadata,
    Column("key", String(400), primary_key=True),  # "ip:<address>" or "email:<address>"
    Column("failures", Integer, nullable=False),
    Column("window_start", UTCDateTime(), nullable=False),
)

daily_stats = Table(
    "daily_stats",
    metadata,
    Column("day", Date, nullable=False),  # UTC day
    Column("metric", String(32), nullable=False),
    Column("value", BigInteger, nullable=False),
    PrimaryKeyConstraint("day", "metric", name="pk_daily_stats"),
)
