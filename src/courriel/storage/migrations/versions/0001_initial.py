"""Initial schema: mail store, change feed, blobs, maildrop locks, outbound queue.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# 64-bit ids on PostgreSQL; INTEGER (a ROWID alias that autoincrements) on SQLite.
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
# Stored in UTC; the model's UTCDateTime makes them timezone-aware on read.
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create every table of the first schema."""
    op.create_table(
        "blobs",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_blobs")),
    )
    op.create_table(
        "domains",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_domains")),
        sa.UniqueConstraint("name", name=op.f("uq_domains_name")),
    )
    op.create_table(
        "queue_messages",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("sender", sa.String(length=320), nullable=False),
        sa.Column("blob_key", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("trace_header", sa.LargeBinary(), nullable=False),
        sa.Column("priority", sa.String(length=16), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_queue_messages")),
    )
    op.create_index("ix_queue_messages_blob_key", "queue_messages", ["blob_key"], unique=False)
    op.create_table(
        "accounts",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("domain_id", ID, nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["domain_id"],
            ["domains.id"],
            name=op.f("fk_accounts_domain_id_domains"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts")),
        sa.UniqueConstraint("address", name=op.f("uq_accounts_address")),
    )
    op.create_table(
        "aliases",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("alias", sa.String(length=320), nullable=False),
        sa.Column("domain_id", ID, nullable=False),
        sa.Column("target", sa.String(length=320), nullable=False),
        sa.ForeignKeyConstraint(
            ["domain_id"],
            ["domains.id"],
            name=op.f("fk_aliases_domain_id_domains"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_aliases")),
        sa.UniqueConstraint("alias", "target", name="uq_aliases_alias_target"),
    )
    op.create_index("ix_aliases_target", "aliases", ["target"], unique=False)
    op.create_table(
        "queue_recipients",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("message_id", ID, nullable=False),
        sa.Column("recipient", sa.String(length=320), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", TS, nullable=False),
        sa.Column("last_reply", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["queue_messages.id"],
            name=op.f("fk_queue_recipients_message_id_queue_messages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_queue_recipients")),
    )
    op.create_index(
        "ix_queue_recipients_due", "queue_recipients", ["status", "next_attempt_at"], unique=False
    )
    op.create_index(
        "ix_queue_recipients_message_id", "queue_recipients", ["message_id"], unique=False
    )
    op.create_table(
        "folders",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("account_id", ID, nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("special_use", sa.String(length=32), nullable=True),
        sa.Column("uidvalidity", sa.BigInteger(), nullable=False),
        sa.Column("uidnext", sa.BigInteger(), nullable=False),
        sa.Column("highest_modseq", sa.BigInteger(), nullable=False),
        sa.Column("subscribed", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_folders_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_folders")),
        sa.UniqueConstraint("account_id", "name", name="uq_folders_account_name"),
    )
    op.create_table(
        "maildrop_locks",
        sa.Column("account_id", ID, autoincrement=False, nullable=False),
        sa.Column("holder", sa.String(length=64), nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_maildrop_locks_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_maildrop_locks")),
    )
    op.create_table(
        "changes",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("account_id", ID, nullable=False),
        sa.Column("folder_id", ID, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("uid", sa.BigInteger(), nullable=False),
        sa.Column("modseq", sa.BigInteger(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_changes_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["folder_id"],
            ["folders.id"],
            name=op.f("fk_changes_folder_id_folders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_changes")),
    )
    op.create_index("ix_changes_account_id", "changes", ["account_id", "id"], unique=False)
    op.create_table(
        "messages",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("folder_id", ID, nullable=False),
        sa.Column("uid", sa.BigInteger(), nullable=False),
        sa.Column("blob_key", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("internal_date", TS, nullable=False),
        sa.Column("flags", sa.Text(), nullable=False),
        sa.Column("modseq", sa.BigInteger(), nullable=False),
        sa.Column("trace_header", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["folder_id"],
            ["folders.id"],
            name=op.f("fk_messages_folder_id_folders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messages")),
        sa.UniqueConstraint("folder_id", "uid", name="uq_messages_folder_uid"),
    )
    op.create_index("ix_messages_blob_key", "messages", ["blob_key"], unique=False)


def downgrade() -> None:
    """Drop every table (children first)."""
    for table in (
        "messages",
        "changes",
        "maildrop_locks",
        "folders",
        "queue_recipients",
        "aliases",
        "accounts",
        "queue_messages",
        "domains",
        "blobs",
    ):
        op.drop_table(table)
