"""Transactional messages are found by contact (the dashboard profile's timeline, GDPR).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Index transactional_messages by (contact_id, created_at, id): newest first per contact."""
    op.create_index(
        "ix_transactional_messages_contact_id",
        "transactional_messages",
        ["contact_id", "created_at", "id"],
        unique=False,
    )


def downgrade() -> None:
    """Drop the index."""
    op.drop_index("ix_transactional_messages_contact_id", table_name="transactional_messages")
