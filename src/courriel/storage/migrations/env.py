"""Alembic environment: runs migrations on the connection given by ``Database.upgrade``.

Only online mode on a caller-provided connection is supported: the caller holds the
transaction (and on PostgreSQL the advisory lock), so migrations and the version
table update commit together.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from courriel.storage.models import metadata

connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):
    raise RuntimeError("run migrations through courriel.storage.db.Database.upgrade()")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
