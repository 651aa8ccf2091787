"""Tables of campaigns: templates, campaigns and their variants, recipients, reports, feedback.

A campaign's audience is frozen into ``campaign_recipients`` when sending starts (one row
per contact, paged by id); each row's ``status`` moves from ``pending`` to ``sent`` in the
same transaction that stores the message (``CommitJob.on_commit``), so a crash never sends
twice nor skips anyone. Reports are pre-aggregated in ``campaign_stats`` (one row per
variant) and ``campaign_links``, updated in the transaction of each tracked event; the
first open, click, bounce … of a recipient is told apart by its ``*_at`` column.
Transactional messages (``POST /api/v1/messages``) are one ``transactional_messages`` row
each. Mail arriving at a VERP address (bounces, complaints) is one ``feedback_reports``
row, written with its blob by the delivery router and read by the feedback processor.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from courriel.storage.models.base import UTCDateTime, metadata
from courriel.storage.models.marketing import Id, Json

__all__ = [
    "bounce_state",
    "campaign_links",
    "campaign_recipients",
    "campaign_stats",
    "campaign_variants",
    "campaigns",
    "feedback_reports",
    "order_attributions",
    "templates",
    "transactional_messages",
]

templates = Table(
    "templates",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("kind", String(8), nullable=False),  # "mjml" | "html"
    Column("source", Text, nullable=False),  # what the user wrote (MJML or HTML, with Jinja)
    Column("html", Text, nullable=False),  # the source compiled to HTML, Jinja still in it
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

campaigns = Table(
    "campaigns",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(255), nullable=False),
    Column("from_address", String(320), nullable=False),
    Column("from_name", String(255), nullable=True),
    Column("reply_to", String(320), nullable=True),
    Column("preheader", String(255), nullable=True),
    # [{"kind": "list"|"segment", "id": N}, …]: contacts in any of them.
    Column("audience", Json, nullable=False),
    # draft | scheduled | sending | testing | paused | cancelled | sent
    Column("status", String(16), nullable=False),
    Column("scheduled_at", UTCDateTime(), nullable=True),
    # A/B test, or None: {"sample_percent": 20, "wait_seconds": 14400,
    # "metric": "clicks"|"revenue"}; the variants are the campaign_variants rows.
    Column("ab", Json, nullable=True),
    Column("winner_variant_id", Id, nullable=True),
    Column("test_ends_at", UTCDateTime(), nullable=True),  # when the A/B winner is picked
    Column("started_at", UTCDateTime(), nullable=True),  # audience frozen
    Column("finished_at", UTCDateTime(), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Index("ix_campaigns_status", "status", "scheduled_at"),
)

campaign_variants = Table(
    "campaign_variants",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("campaign_id", Id, ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=False),
    Column("label", String(8), nullable=False),  # "A", "B", …
    Column("subject", String(998), nullable=False),
    Column("template_id", Id, ForeignKey("templates.id", ondelete="RESTRICT"), nullable=False),
    UniqueConstraint("campaign_id", "label", name="uq_campaign_variants_label"),
)

campaign_recipients = Table(
    "campaign_recipients",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("campaign_id", Id, ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=False),
    Column("contact_id", Id, ForeignKey("contacts.id", ondelete="CASCADE"), nullable=False),
    Column("email", String(320), nullable=False),  # as frozen
    Column("variant_id", Id, nullable=True),  # set when the recipient's copy is chosen
    Column("phase", String(8), nullable=False),  # "sample" (A/B test) | "rest" | "all"
    # pending | sent | skipped (suppressed/unsubscribed since the freeze) | failed
    Column("status", String(16), nullable=False),
    Column("sent_at", UTCDateTime(), nullable=True),
    Column("delivered_at", UTCDateTime(), nullable=True),
    Column("opened_at", UTCDateTime(), nullable=True),  # first real open (not a prefetch)
    Column("clicked_at", UTCDateTime(), nullable=True),
    Column("bounced_at", UTCDateTime(), nullable=True),
    Column("unsubscribed_at", UTCDateTime(), nullable=True),
    Column("complained_at", UTCDateTime(), nullable=True),
    UniqueConstraint("campaign_id", "contact_id", name="uq_campaign_recipients_contact"),
    Index("ix_campaign_recipients_todo", "campaign_id", "status", "phase", "id"),
    Index("ix_campaign_recipients_contact", "contact_id", "clicked_at"),
)

campaign_stats = Table(
    "campaign_stats",
    metadata,
    Column("campaign_id", Id, ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=False),
    Column(
        "variant_id",
        Id,
        ForeignKey("campaign_variants.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("recipients", Integer, nullable=False, default=0),
    Column("sent", Integer, nullable=False, default=0),
    Column("delivered", Integer, nullable=False, default=0),
    Column("bounced", Integer, nullable=False, default=0),
    Column("opens", Integer, nullable=False, default=0),  # every real open
    Column("unique_opens", Integer, nullable=False, default=0),
    Column("prefetches", Integer, nullable=False, default=0),  # Apple Mail privacy and alike
    Column("clicks", Integer, nullable=False, default=0),
    Column("unique_clicks", Integer, nullable=False, default=0),
    Column("unsubscribes", Integer, nullable=False, default=0),
    Column("complaints", Integer, nullable=False, default=0),
    Column("orders", Integer, nullable=False, default=0),
    Column("revenue_minor", BigInteger, nullable=False, default=0),
    PrimaryKeyConstraint("campaign_id", "variant_id", name="pk_campaign_stats"),
)

campaign_links = Table(
    "campaign_links",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("campaign_id", Id, ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=False),
    Column("url", Text, nullable=False),
    Column("url_hash", String(64), nullable=False),  # SHA-256 hex of url
    Column("clicks", Integer, nullable=False, default=0),
    Column("unique_clicks", Integer, nullable=False, default=0),
    UniqueConstraint("campaign_id", "url_hash", name="uq_campaign_links_url"),
)

transactional_messages = Table(
    "transactional_messages",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("idempotency_key", String(255), nullable=False, unique=True),
    Column("request_hash", String(64), nullable=False),  # same key, other body: 409/422
    Column("template_id", Id, ForeignKey("templates.id", ondelete="SET NULL"), nullable=True),
    Column("contact_id", Id, ForeignKey("contacts.id", ondelete="SET NULL"), nullable=True),
    Column("email", String(320), nullable=False),
    Column("subject", String(998), nullable=False),
    # pending (reserved, not yet queued) | queued | bounced | complained
    Column("status", String(16), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("opened_at", UTCDateTime(), nullable=True),
    Column("clicked_at", UTCDateTime(), nullable=True),
    Index("ix_transactional_messages_created_at", "created_at"),
    Index("ix_transactional_messages_contact_id", "contact_id", "created_at", "id"),
)

feedback_reports = Table(
    "feedback_reports",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("recipient", String(320), nullable=False),  # the VERP address it came to
    Column("blob_key", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("received_at", UTCDateTime(), nullable=False),
    Column("processed_at", UTCDateTime(), nullable=True),
    Column("outcome", Text, nullable=True),  # what the processor did, for operators
    Index("ix_feedback_reports_todo", "processed_at", "id"),
)

bounce_state = Table(
    "bounce_state",
    metadata,
    Column("email", String(320), primary_key=True),
    Column("soft_in_row", Integer, nullable=False, default=0),  # reset by a delivery
    Column("hard", Integer, nullable=False, default=0),
    Column("last_status", String(16), nullable=True),  # last enhanced status code
    Column("last_at", UTCDateTime(), nullable=False),
)

order_attributions = Table(
    "order_attributions",
    metadata,
    # One per order: the campaign whose click (the last within the window) earned it.
    Column("order_id", Id, ForeignKey("orders.id", ondelete="CASCADE"), primary_key=True),
    Column("campaign_id", Id, ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=False),
    Column("variant_id", Id, nullable=False),
    Column("clicked_at", UTCDateTime(), nullable=False),
    Column("revenue_minor", BigInteger, nullable=False),  # as counted in campaign_stats
    Index("ix_order_attributions_campaign", "campaign_id"),
)
