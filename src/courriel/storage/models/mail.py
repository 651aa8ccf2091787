"""Tables of the mail store: domains, accounts, aliases, folders, messages, changes, locks.

Invariants the schema enforces: one account per address; one folder per (account, name);
one message per (folder, uid); one alias row per (alias, target). UIDs are allocated from
``folders.uidnext`` inside the delivering transaction, so they ascend strictly and are
never reused (RFC 9051 §2.3.1.1). Bodies live in the blob store; rows hold the key.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from courriel.storage.models.base import UTCDateTime, metadata

__all__ = [
    "accounts",
    "aliases",
    "blobs",
    "changes",
    "dkim_keys",
    "domains",
    "folders",
    "maildrop_locks",
    "messages",
    "subscriptions",
]

# BigInteger ids are plain INTEGER on SQLite (so that they autoincrement as ROWID aliases).
Id = BigInteger().with_variant(Integer(), "sqlite")

domains = Table(
    "domains",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(255), nullable=False, unique=True),  # lower-case A-labels
    Column("created_at", UTCDateTime(), nullable=False),
)

accounts = Table(
    "accounts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("address", String(320), nullable=False, unique=True),  # normal form
    Column("domain_id", Id, ForeignKey("domains.id", ondelete="CASCADE"), nullable=False),
    Column("password_hash", Text, nullable=False),  # argon2id PHC string
    Column("created_at", UTCDateTime(), nullable=False),
    # (0003) The highest UIDVALIDITY any folder of the account had, deleted ones included,
    # so that a folder created again gets a larger one (RFC 9051 §2.3.1.1).
    Column("last_uidvalidity", BigInteger, nullable=False, default=0, server_default="0"),
)

aliases = Table(
    "aliases",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    # "local@domain", or "@domain" for the domain's catch-all.
    Column("alias", String(320), nullable=False),
    Column("domain_id", Id, ForeignKey("domains.id", ondelete="CASCADE"), nullable=False),
    Column("target", String(320), nullable=False),  # a local account or a remote address
    UniqueConstraint("alias", "target", name="uq_aliases_alias_target"),
    Index("ix_aliases_target", "target"),
)

folders = Table(
    "folders",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("account_id", Id, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(255), nullable=False),
    Column("special_use", String(32), nullable=True),  # RFC 6154 role, e.g. "\\Sent"
    Column("uidvalidity", BigInteger, nullable=False),  # RFC 9051 §2.3.1.1
    Column("uidnext", BigInteger, nullable=False, default=1),
    Column("highest_modseq", BigInteger, nullable=False, default=0),  # RFC 7162 §3.1.2
    Column("subscribed", Boolean, nullable=False, default=True),
    # (0003) First UID nobody has claimed as \Recent yet (RFC 3501 §2.3.2).
    Column("recent_uid", BigInteger, nullable=False, default=1, server_default="1"),
    UniqueConstraint("account_id", "name", name="uq_folders_account_name"),
)

messages = Table(
    "messages",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("folder_id", Id, ForeignKey("folders.id", ondelete="CASCADE"), nullable=False),
    Column("uid", BigInteger, nullable=False),
    Column("blob_key", String(64), nullable=False),  # SHA-256 hex of the body
    Column("size", BigInteger, nullable=False),  # len(trace_header) + len(body)
    Column("internal_date", UTCDateTime(), nullable=False),  # RFC 9051 §2.3.3
    Column("flags", Text, nullable=False, default=""),  # space-separated, e.g. "\\Seen"
    Column("modseq", BigInteger, nullable=False),  # RFC 7162 mod-sequence of last change
    Column("trace_header", LargeBinary, nullable=False),  # Received: added on receipt
    UniqueConstraint("folder_id", "uid", name="uq_messages_folder_uid"),
    Index("ix_messages_blob_key", "blob_key"),
)

changes = Table(
    "changes",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("account_id", Id, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    # NULL for kind "folders" (0003): a folder was created, deleted or renamed.
    Column("folder_id", Id, ForeignKey("folders.id", ondelete="CASCADE"), nullable=True),
    Column("kind", String(16), nullable=False),  # "append" | "expunge" | "flags" | "folders"
    Column("uid", BigInteger, nullable=False),
    Column("modseq", BigInteger, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Index("ix_changes_account_id", "account_id", "id"),
    Index("ix_changes_folder_id", "folder_id", "id"),  # (0003) changes_since of one folder
)

# (0003) IMAP subscriptions (RFC 9051 §6.3.7) of names that have no folder: a subscribed
# folder that exists has folders.subscribed set instead. A name is in one place only.
subscriptions = Table(
    "subscriptions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("account_id", Id, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(255), nullable=False),
    UniqueConstraint("account_id", "name", name="uq_subscriptions_account_name"),
)

blobs = Table(
    "blobs",
    metadata,
    Column("key", String(64), primary_key=True),  # SHA-256 hex of data
    Column("data", LargeBinary, nullable=False),
)

maildrop_locks = Table(
    "maildrop_locks",
    metadata,
    Column(
        "account_id",
        Id,
        ForeignKey("accounts.id", ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("holder", String(64), nullable=False),  # random token of the POP3 session
    Column("expires_at", UTCDateTime(), nullable=False),
)

# DKIM keys per domain (0002): RFC 6376 RSA and RFC 8463 Ed25519, selectors named by date.
dkim_keys = Table(
    "dkim_keys",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("domain_id", Id, ForeignKey("domains.id", ondelete="CASCADE"), nullable=False),
    Column("selector", String(63), nullable=False),  # e.g. "c20261127r"
    Column("algorithm", String(16), nullable=False),  # "rsa-sha256" | "ed25519-sha256"
    Column("private_key", Text, nullable=False),  # PKCS#8 PEM
    Column("public_key", Text, nullable=False),  # base64 for the p= tag of the DNS record
    Column("active", Boolean, nullable=False, default=True),  # used for signing
    Column("created_at", UTCDateTime(), nullable=False),
    UniqueConstraint("domain_id", "selector", name="uq_dkim_keys_domain_selector"),
)
