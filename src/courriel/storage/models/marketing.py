"""Tables of the marketing engine: contacts and consent, lists, suppression, shop data, events.

Conventions:
- Money is stored in minor units (``*_minor``: cents) as integers, with the ISO 4217
  currency beside it, so sums are exact on both engines.
- ``contacts.email`` is the normalised address (:func:`courriel.mail.address.normalize_address`);
  it is the contact's identity. Shop records (customers, orders, checkouts, products) keep the
  shop's own id in ``external_id`` per integration.
- ``contacts.email_status`` / ``sms_status`` are the current consent per channel, kept in step
  with the append-only proof in ``consents`` (the latest row per channel) in the same
  transaction; segments and campaigns read the column, exports read the proof.
- ``contacts.order_count`` … ``last_order_at`` are aggregates of the contact's orders that
  count (not cancelled), recomputed in the transaction that changes an order, so segments
  never group 3 million orders on every count.
- ``order_lines.contact_id`` / ``placed_at`` / ``status`` are copies of their order's, kept
  in step in the same transaction (segments read lines without joining orders).
- ``events`` are append-only; (source, unique_key) deduplicates replays.
- JSON columns are JSONB on PostgreSQL and JSON text on SQLite.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB

from courriel.storage.models.base import UTCDateTime, metadata

__all__ = [
    "api_keys",
    "browser_ids",
    "checkouts",
    "consents",
    "contact_tags",
    "contacts",
    "customers",
    "events",
    "integrations",
    "list_members",
    "lists",
    "order_lines",
    "orders",
    "product_categories",
    "product_variants",
    "products",
    "segments",
    "suppressions",
    "tracker_sites",
    "webhook_receipts",
]

Id = BigInteger().with_variant(Integer(), "sqlite")
Json = JSON().with_variant(JSONB(), "postgresql")


def _fk(table: str, *, null: bool = False, on_delete: str = "CASCADE") -> Column[int]:
    """``<table>_id`` referencing ``<table>s.id`` (the column name drops the plural)."""
    name = table.removesuffix("s") + "_id"
    return Column(name, Id, ForeignKey(f"{table}.id", ondelete=on_delete), nullable=null)


# -- access: shops, API keys, tracker sites -------------------------------------------

integrations = Table(
    "integrations",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),  # "shopify" | "woocommerce"
    Column("name", String(64), nullable=False, unique=True),  # in the hook URL
    Column("secret", Text, nullable=False),  # HMAC key; never logged nor shown again
    Column("created_at", UTCDateTime(), nullable=False),
)

webhook_receipts = Table(
    "webhook_receipts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    _fk("integrations"),
    Column(
        "delivery_id", String(128), nullable=False
    ),  # X-Shopify-Webhook-Id / X-WC-Webhook-Delivery-ID
    Column("topic", String(64), nullable=False),
    Column("status", String(16), nullable=False),  # "applied" | "ignored" | "rejected"
    Column("detail", Text, nullable=False, default=""),
    Column("received_at", UTCDateTime(), nullable=False),
    UniqueConstraint("integration_id", "delivery_id", name="uq_webhook_receipts_delivery"),
    Index("ix_webhook_receipts_received_at", "received_at"),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),  # the key's first characters, to recognise it
    Column("key_hash", String(64), nullable=False, unique=True),  # SHA-256 hex of the whole key
    Column("scopes", Text, nullable=False),  # space-separated, e.g. "contacts:read events:write"
    Column("created_at", UTCDateTime(), nullable=False),
    Column("last_used_at", UTCDateTime(), nullable=True),
    Column("revoked_at", UTCDateTime(), nullable=True),
)

tracker_sites = Table(
    "tracker_sites",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("public_key", String(64), nullable=False, unique=True),  # in the storefront snippet
    Column("origins", Text, nullable=False, default=""),  # allowed Origin values, space-separated
    Column("created_at", UTCDateTime(), nullable=False),
)

# -- contacts, consent, lists, suppression --------------------------------------------

contacts = Table(
    "contacts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("email", String(320), nullable=False, unique=True),
    Column("first_name", String(255), nullable=True),
    Column("last_name", String(255), nullable=True),
    Column("phone", String(32), nullable=True),  # E.164
    Column("country", String(2), nullable=True),  # ISO 3166-1 alpha-2, upper case
    Column("region", String(128), nullable=True),
    Column("city", String(128), nullable=True),
    Column("postal_code", String(32), nullable=True),
    Column("time_zone", String(64), nullable=True),  # IANA name
    Column("attributes", Json, nullable=False),  # custom attributes, a JSON object
    Column("source", String(64), nullable=True),  # "shopify:NAME", "import", "api", "tracker"
    Column("email_status", String(16), nullable=False, default="never"),
    Column("sms_status", String(16), nullable=False, default="never"),
    Column("order_count", Integer, nullable=False, default=0),
    Column("total_spent_minor", BigInteger, nullable=False, default=0),
    Column("first_order_at", UTCDateTime(), nullable=True),
    Column("last_order_at", UTCDateTime(), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    # With the id: a segment's "subscribed AND in (…)" probes it index-only, and a scan of
    # every contact's status reads it instead of the rows (PostgreSQL; SQLite's indexes
    # carry the rowid anyway). bench/segments.py on PostgreSQL, CPU: segment 4 (bought,
    # subscribed) 498 -> 337 ms, segment 5 (engaged, not unsubscribed) 348 -> 240 ms.
    Index("ix_contacts_email_status", "email_status", "id"),
    # With the status (0006): a location condition beside a consent one is one bitmap that
    # PostgreSQL ANDs with the attributes' GIN bitmap before reading any row.
    # bench/segments.py segment 1 (subscribed VIPs in FR/DE), PostgreSQL: 22,066 heap pages
    # read -> 9,786, 217-227 ms -> 35-85 ms (load 4.5). Country-only conditions use it too.
    Index("ix_contacts_country_status", "country", "email_status"),
    # Covering for order-aggregate segments (total spent, with or without the last order
    # date): an index-only range instead of reading every contact row past its JSON.
    # bench/segments.py segment 2 (spent > 500, lapsed 180 d): 151 -> 16 ms of CPU on
    # PostgreSQL, 160 -> 38 ms on SQLite.
    Index("ix_contacts_spent_last_order", "total_spent_minor", "last_order_at"),
    # PostgreSQL only (SQLite has no inverted index): attribute equality with a boolean is
    # compiled as ``attributes @> '{"key": true}'`` (segments/sqlparts.py JsonHas), a bitmap
    # scan of this index instead of a JSON test on every contact (5.5 MB for 1M contacts,
    # built in 1 s). bench/segments.py segment 1 (subscribed VIPs in FR/DE), PostgreSQL:
    # 233 -> 160 ms wall (load 2.7); the rest is reading the 22,000 heap pages the 49,871
    # VIPs are spread over (docs/performance.md, "Segments").
    # The schema test skips indexes whose ddl_if names another dialect.
    Index(
        "ix_contacts_attributes",
        "attributes",
        postgresql_using="gin",
        postgresql_ops={"attributes": "jsonb_path_ops"},
    ).ddl_if(dialect="postgresql"),
)

contact_tags = Table(
    "contact_tags",
    metadata,
    _fk("contacts"),
    Column("tag", String(64), nullable=False),
    PrimaryKeyConstraint("contact_id", "tag", name="pk_contact_tags"),
    Index("ix_contact_tags_tag", "tag"),
)

consents = Table(
    "consents",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    _fk("contacts"),
    Column("channel", String(8), nullable=False),  # "email" | "sms"
    Column("status", String(16), nullable=False),  # subscribed | unsubscribed | pending | never
    Column("method", String(32), nullable=False),  # import | api | shopify | form | double_opt_in …
    Column("ip", String(45), nullable=True),
    Column("detail", Text, nullable=True),  # e.g. the list, the user agent, the source record
    Column("recorded_at", UTCDateTime(), nullable=False),
    Index("ix_consents_contact", "contact_id", "recorded_at"),
)

lists = Table(
    "lists",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("double_opt_in", Boolean, nullable=False, default=False),
    Column("created_at", UTCDateTime(), nullable=False),
)

list_members = Table(
    "list_members",
    metadata,
    _fk("lists"),
    _fk("contacts"),
    Column("status", String(16), nullable=False),  # subscribed | pending | unsubscribed
    Column("added_at", UTCDateTime(), nullable=False),
    Column("confirmed_at", UTCDateTime(), nullable=True),
    PrimaryKeyConstraint("list_id", "contact_id", name="pk_list_members"),
    Index("ix_list_members_contact_id", "contact_id"),
)

suppressions = Table(
    "suppressions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column(
        "kind", String(8), nullable=False
    ),  # "address" | "domain" | "hash" (SHA-256 of an address)
    Column("value", String(320), nullable=False),
    Column(
        "reason", String(32), nullable=False
    ),  # manual | bounce | complaint | forgotten | unsubscribe
    Column("detail", Text, nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    UniqueConstraint("kind", "value", name="uq_suppressions_kind_value"),
)

browser_ids = Table(
    "browser_ids",
    metadata,
    Column("anonymous_id", String(64), primary_key=True),
    _fk("contacts", null=True),
    Column("first_seen", UTCDateTime(), nullable=False),
    Column("last_seen", UTCDateTime(), nullable=False),
    Index("ix_browser_ids_contact_id", "contact_id"),
)

# -- the shop: products, customers, orders, checkouts ---------------------------------

products = Table(
    "products",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    _fk("integrations", null=True, on_delete="SET NULL"),
    Column("external_id", String(64), nullable=False),
    Column("title", String(512), nullable=False),
    Column("url", Text, nullable=True),
    Column("image_url", Text, nullable=True),
    Column("price_minor", BigInteger, nullable=True),
    Column("currency", String(3), nullable=True),
    Column("stock", Integer, nullable=True),  # None: not tracked
    Column("status", String(16), nullable=False),  # active | draft | archived | deleted
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    UniqueConstraint("integration_id", "external_id", name="uq_products_external"),
)

product_categories = Table(
    "product_categories",
    metadata,
    _fk("products"),
    Column("category", String(255), nullable=False),
    PrimaryKeyConstraint("product_id", "category", name="pk_product_categories"),
    Index("ix_product_categories_category", "category"),
)

product_variants = Table(
    "product_variants",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    _fk("products"),
    Column("external_id", String(64), nullable=False),
    Column("title", String(512), nullable=False),
    Column("sku", String(128), nullable=True),
    Column("price_minor", BigInteger, nullable=True),
    Column("stock", Integer, nullable=True),
    UniqueConstraint("product_id", "external_id", name="uq_product_variants_external"),
)

customers = Table(
    "customers",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    _fk("integrations"),
    Column("external_id", String(64), nullable=False),
    _fk("contacts"),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    UniqueConstraint("integration_id", "external_id", name="uq_customers_external"),
    Index("ix_customers_contact_id", "contact_id"),
)

orders = Table(
    "orders",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    _fk("integrations", null=True, on_delete="SET NULL"),
    Column("external_id", String(64), nullable=False),
    _fk("contacts", null=True),
    _fk("customers", null=True, on_delete="SET NULL"),
    Column("number", String(64), nullable=True),  # the shop's order name, e.g. "#1001"
    Column("currency", String(3), nullable=False),
    Column("subtotal_minor", BigInteger, nullable=False, default=0),
    Column("discount_minor", BigInteger, nullable=False, default=0),
    Column("shipping_minor", BigInteger, nullable=False, default=0),
    Column("tax_minor", BigInteger, nullable=False, default=0),
    Column("total_minor", BigInteger, nullable=False),
    Column("refunded_minor", BigInteger, nullable=False, default=0),
    Column("discount_codes", Json, nullable=False),  # a JSON list of strings
    Column(
        "status", String(16), nullable=False
    ),  # placed | paid | fulfilled | cancelled | refunded
    Column("financial_status", String(32), nullable=True),  # as the shop says
    Column("fulfillment_status", String(32), nullable=True),
    Column("placed_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("cancelled_at", UTCDateTime(), nullable=True),
    UniqueConstraint("integration_id", "external_id", name="uq_orders_external"),
    Index("ix_orders_contact_placed", "contact_id", "placed_at"),
    # Covering: windowed order aggregates of segments read only this index.
    Index(
        "ix_orders_placed_at",
        "placed_at",
        "contact_id",
        "status",
        "total_minor",
        "refunded_minor",
        "id",
    ),
)

order_lines = Table(
    "order_lines",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    _fk("orders"),
    _fk("products", null=True, on_delete="SET NULL"),
    Column("external_product_id", String(64), nullable=True),
    Column("external_variant_id", String(64), nullable=True),
    Column("title", String(512), nullable=False),
    Column("sku", String(128), nullable=True),
    Column("quantity", Integer, nullable=False),
    Column("price_minor", BigInteger, nullable=False),  # unit price
    # Copies of the order's contact_id, placed_at and status (no foreign key: the line goes
    # with its order). Written with the lines (marketing/orders.py) and brought in step by
    # commerce.refresh_order_aggregates, which every change of an order's contact or
    # status is followed by (the same invariant as the contact's order aggregates).
    Column("contact_id", Id, nullable=True),
    Column("placed_at", UTCDateTime(), nullable=False),
    Column("status", String(16), nullable=False),
    Index("ix_order_lines_order_id", "order_id"),
    # "Bought product P / a product of category C in the last D days" is one index-only
    # range per product, without joining orders. bench/segments.py segment 4 (bought cat-3
    # in 90 d, subscribed): 42,000 index entries instead of 360,000 lines joined with
    # 358,000 orders, 460 -> 41 ms of CPU on SQLite, 360 -> 130 ms on PostgreSQL.
    Index("ix_order_lines_product_placed", "product_id", "placed_at", "contact_id", "status"),
)

checkouts = Table(
    "checkouts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    _fk("integrations", null=True, on_delete="SET NULL"),
    Column("external_id", String(64), nullable=False),
    _fk("contacts", null=True),
    Column("recovery_url", Text, nullable=True),  # the shop's abandoned-checkout link
    Column("currency", String(3), nullable=True),
    Column("total_minor", BigInteger, nullable=True),
    Column(
        "lines", Json, nullable=False
    ),  # [{"product_id", "variant_id", "title", "quantity", "price_minor"}]
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("completed_at", UTCDateTime(), nullable=True),
    UniqueConstraint("integration_id", "external_id", name="uq_checkouts_external"),
    Index("ix_checkouts_contact_id", "contact_id"),
)

# -- events and segments --------------------------------------------------------------

events = Table(
    "events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    _fk("contacts", null=True),  # None until an anonymous browser is identified
    Column("anonymous_id", String(64), nullable=True),
    Column("name", String(128), nullable=False),  # Klaviyo names: "Placed Order", "Viewed Product"…
    Column("properties", Json, nullable=False),
    Column("value", Float, nullable=True),  # the event's money value in major units, if any
    Column("occurred_at", UTCDateTime(), nullable=False),
    Column("source", String(64), nullable=False),  # "shopify:NAME", "api", "tracker", "campaign"
    Column("unique_key", String(128), nullable=True),  # with source: deduplicates replays
    UniqueConstraint("source", "unique_key", name="uq_events_source_unique_key"),
    Index("ix_events_contact_name_time", "contact_id", "name", "occurred_at"),
    # Covering: a segment's "did X in the last D days" reads only this index.
    Index("ix_events_name_time", "name", "occurred_at", "contact_id"),
    Index("ix_events_anonymous_id", "anonymous_id"),
)

segments = Table(
    "segments",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("definition", Json, nullable=False),  # the condition tree (marketing.segments)
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)
