"""The contacts' country index also carries the email consent status.

Segments that test a location and a consent status together (and an attribute, on
PostgreSQL) then read only the rows that pass all three (docs/performance.md, Segments).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Replace ix_contacts_country (country) by (country, email_status)."""
    op.create_index(
        "ix_contacts_country_status", "contacts", ["country", "email_status"], unique=False
    )
    op.drop_index("ix_contacts_country", table_name="contacts")


def downgrade() -> None:
    """Back to the country-only index."""
    op.create_index("ix_contacts_country", "contacts", ["country"], unique=False)
    op.drop_index("ix_contacts_country_status", table_name="contacts")
