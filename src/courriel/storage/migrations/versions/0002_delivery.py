"""Outbound delivery: queue claims and attempts, per-message needs, DKIM keys.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Add claim/lease and DSN columns, the attempts table and the DKIM keys table."""
    with op.batch_alter_table("queue_messages") as batch:
        batch.add_column(
            sa.Column("smtputf8", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(
            sa.Column("eight_bit", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("queue_recipients") as batch:
        batch.add_column(sa.Column("claimed_by", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("lease_until", TS, nullable=True))
        batch.add_column(
            sa.Column("dsn_sent", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(
            sa.Column("delay_warned", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_table(
        "queue_attempts",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("recipient_id", ID, nullable=False),
        sa.Column("attempted_at", TS, nullable=False),
        sa.Column("mx_host", sa.String(length=255), nullable=False),
        sa.Column("tls", sa.Boolean(), nullable=False),
        sa.Column("tls_verified", sa.Boolean(), nullable=False),
        sa.Column("code", sa.Integer(), nullable=False),
        sa.Column("reply", sa.Text(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["recipient_id"],
            ["queue_recipients.id"],
            name=op.f("fk_queue_attempts_recipient_id_queue_recipients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_queue_attempts")),
    )
    op.create_index("ix_queue_attempts_recipient_id", "queue_attempts", ["recipient_id"])
    op.create_table(
        "dkim_keys",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("domain_id", ID, nullable=False),
        sa.Column("selector", sa.String(length=63), nullable=False),
        sa.Column("algorithm", sa.String(length=16), nullable=False),
        sa.Column("private_key", sa.Text(), nullable=False),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["domain_id"],
            ["domains.id"],
            name=op.f("fk_dkim_keys_domain_id_domains"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dkim_keys")),
        sa.UniqueConstraint("domain_id", "selector", name="uq_dkim_keys_domain_selector"),
    )


def downgrade() -> None:
    """Drop what upgrade added."""
    op.drop_table("dkim_keys")
    op.drop_index("ix_queue_attempts_recipient_id", table_name="queue_attempts")
    op.drop_table("queue_attempts")
    with op.batch_alter_table("queue_recipients") as batch:
        for column in ("delay_warned", "dsn_sent", "lease_until", "claimed_by"):
            batch.drop_column(column)
    with op.batch_alter_table("queue_messages") as batch:
        batch.drop_column("eight_bit")
        batch.drop_column("smtputf8")
