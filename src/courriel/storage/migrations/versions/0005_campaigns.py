"""Campaigns: templates, campaigns, variants, recipients, reports, feedback, attribution.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    """Create the campaign tables (no existing table changes)."""
    op.create_table(
        "bounce_state",
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("soft_in_row", sa.Integer(), nullable=False),
        sa.Column("hard", sa.Integer(), nullable=False),
        sa.Column("last_status", sa.String(length=16), nullable=True),
        sa.Column("last_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("email", name=op.f("pk_bounce_state")),
    )
    op.create_table(
        "campaigns",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("from_address", sa.String(length=320), nullable=False),
        sa.Column("from_name", sa.String(length=255), nullable=True),
        sa.Column("reply_to", sa.String(length=320), nullable=True),
        sa.Column("preheader", sa.String(length=255), nullable=True),
        sa.Column("audience", JSON, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("scheduled_at", TS, nullable=True),
        sa.Column("ab", JSON, nullable=True),
        sa.Column("winner_variant_id", ID, nullable=True),
        sa.Column("test_ends_at", TS, nullable=True),
        sa.Column("started_at", TS, nullable=True),
        sa.Column("finished_at", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaigns")),
    )
    op.create_index("ix_campaigns_status", "campaigns", ["status", "scheduled_at"], unique=False)
    op.create_table(
        "feedback_reports",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("recipient", sa.String(length=320), nullable=False),
        sa.Column("blob_key", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("processed_at", TS, nullable=True),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feedback_reports")),
    )
    op.create_index(
        "ix_feedback_reports_todo", "feedback_reports", ["processed_at", "id"], unique=False
    )
    op.create_table(
        "templates",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("html", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_templates")),
        sa.UniqueConstraint("name", name=op.f("uq_templates_name")),
    )
    op.create_table(
        "campaign_links",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("campaign_id", ID, nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("url_hash", sa.String(length=64), nullable=False),
        sa.Column("clicks", sa.Integer(), nullable=False),
        sa.Column("unique_clicks", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_campaign_links_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_links")),
        sa.UniqueConstraint("campaign_id", "url_hash", name="uq_campaign_links_url"),
    )
    op.create_table(
        "campaign_recipients",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("campaign_id", ID, nullable=False),
        sa.Column("contact_id", ID, nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("variant_id", ID, nullable=True),
        sa.Column("phase", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("sent_at", TS, nullable=True),
        sa.Column("delivered_at", TS, nullable=True),
        sa.Column("opened_at", TS, nullable=True),
        sa.Column("clicked_at", TS, nullable=True),
        sa.Column("bounced_at", TS, nullable=True),
        sa.Column("unsubscribed_at", TS, nullable=True),
        sa.Column("complained_at", TS, nullable=True),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_campaign_recipients_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_campaign_recipients_contact_id_contacts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_recipients")),
        sa.UniqueConstraint("campaign_id", "contact_id", name="uq_campaign_recipients_contact"),
    )
    op.create_index(
        "ix_campaign_recipients_contact",
        "campaign_recipients",
        ["contact_id", "clicked_at"],
        unique=False,
    )
    op.create_index(
        "ix_campaign_recipients_todo",
        "campaign_recipients",
        ["campaign_id", "status", "phase", "id"],
        unique=False,
    )
    op.create_table(
        "campaign_variants",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("campaign_id", ID, nullable=False),
        sa.Column("label", sa.String(length=8), nullable=False),
        sa.Column("subject", sa.String(length=998), nullable=False),
        sa.Column("template_id", ID, nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_campaign_variants_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["templates.id"],
            name=op.f("fk_campaign_variants_template_id_templates"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_variants")),
        sa.UniqueConstraint("campaign_id", "label", name="uq_campaign_variants_label"),
    )
    op.create_table(
        "transactional_messages",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("template_id", ID, nullable=True),
        sa.Column("contact_id", ID, nullable=True),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("subject", sa.String(length=998), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("opened_at", TS, nullable=True),
        sa.Column("clicked_at", TS, nullable=True),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_transactional_messages_contact_id_contacts"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["templates.id"],
            name=op.f("fk_transactional_messages_template_id_templates"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transactional_messages")),
        sa.UniqueConstraint(
            "idempotency_key", name=op.f("uq_transactional_messages_idempotency_key")
        ),
    )
    op.create_index(
        "ix_transactional_messages_created_at",
        "transactional_messages",
        ["created_at"],
        unique=False,
    )
    op.create_table(
        "campaign_stats",
        sa.Column("campaign_id", ID, nullable=False),
        sa.Column("variant_id", ID, nullable=False),
        sa.Column("recipients", sa.Integer(), nullable=False),
        sa.Column("sent", sa.Integer(), nullable=False),
        sa.Column("delivered", sa.Integer(), nullable=False),
        sa.Column("bounced", sa.Integer(), nullable=False),
        sa.Column("opens", sa.Integer(), nullable=False),
        sa.Column("unique_opens", sa.Integer(), nullable=False),
        sa.Column("prefetches", sa.Integer(), nullable=False),
        sa.Column("clicks", sa.Integer(), nullable=False),
        sa.Column("unique_clicks", sa.Integer(), nullable=False),
        sa.Column("unsubscribes", sa.Integer(), nullable=False),
        sa.Column("complaints", sa.Integer(), nullable=False),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.Column("revenue_minor", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_campaign_stats_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["variant_id"],
            ["campaign_variants.id"],
            name=op.f("fk_campaign_stats_variant_id_campaign_variants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("campaign_id", "variant_id", name="pk_campaign_stats"),
    )
    op.create_table(
        "order_attributions",
        sa.Column("order_id", ID, nullable=False),
        sa.Column("campaign_id", ID, nullable=False),
        sa.Column("variant_id", ID, nullable=False),
        sa.Column("clicked_at", TS, nullable=False),
        sa.Column("revenue_minor", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_order_attributions_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
            name=op.f("fk_order_attributions_order_id_orders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_order_attributions")),
    )
    op.create_index(
        "ix_order_attributions_campaign", "order_attributions", ["campaign_id"], unique=False
    )


def downgrade() -> None:
    """Drop the campaign tables, children first."""
    for table in (
        "order_attributions",
        "campaign_stats",
        "transactional_messages",
        "campaign_variants",
        "campaign_recipients",
        "campaign_links",
        "templates",
        "feedback_reports",
        "campaigns",
        "bounce_state",
    ):
        op.drop_table(table)
