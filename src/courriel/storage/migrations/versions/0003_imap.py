"""IMAP: \\Recent claims, subscriptions, UIDVALIDITY high-water marks, folder-level changes.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Add folders.recent_uid, accounts.last_uidvalidity, subscriptions, a changes index.

    On SQLite the added columns are plain ``ALTER TABLE … ADD COLUMN`` (never a table
    copy of ``accounts`` or ``folders``, whose drop would cascade); only ``changes``,
    which nothing references, is copied to relax its NOT NULL.

    ``changes.folder_id`` becomes nullable: a row of kind ``"folders"`` (CREATE, DELETE,
    RENAME) names no folder, since the folder it was about may be gone.
    """
    with op.batch_alter_table("folders") as batch:
        batch.add_column(
            sa.Column("recent_uid", sa.BigInteger(), nullable=False, server_default="1")
        )
    # Messages that were there before the upgrade are not \Recent for anyone.
    op.execute("UPDATE folders SET recent_uid = uidnext")
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(
            sa.Column("last_uidvalidity", sa.BigInteger(), nullable=False, server_default="0")
        )
    op.execute(
        "UPDATE accounts SET last_uidvalidity = COALESCE("
        "(SELECT MAX(uidvalidity) FROM folders WHERE folders.account_id = accounts.id), 0)"
    )
    with op.batch_alter_table("changes") as batch:
        batch.alter_column("folder_id", existing_type=ID, nullable=True)
    op.create_index("ix_changes_folder_id", "changes", ["folder_id", "id"], unique=False)
    op.create_table(
        "subscriptions",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("account_id", ID, nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_subscriptions_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscriptions")),
        sa.UniqueConstraint("account_id", "name", name="uq_subscriptions_account_name"),
    )


def downgrade() -> None:
    """Drop what upgrade added (folder-level change rows are deleted first)."""
    op.drop_table("subscriptions")
    op.drop_index("ix_changes_folder_id", table_name="changes")
    op.execute("DELETE FROM changes WHERE folder_id IS NULL")
    with op.batch_alter_table("changes") as batch:
        batch.alter_column("folder_id", existing_type=ID, nullable=False)
    # Not batch mode: on SQLite a batch drop_column copies the table and drops the old
    # one, and dropping accounts or folders with foreign keys on would cascade into
    # every folder and message. SQLite 3.35+ drops a column in place.
    op.drop_column("accounts", "last_uidvalidity")
    op.drop_column("folders", "recent_uid")
