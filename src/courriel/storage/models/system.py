"""Tables of the node fleet itself: secrets shared by every node of one database.

A secret (the key that signs links put in mail, for instance) lives in the database,
not in a node's data folder, so that every node of a PostgreSQL fleet signs and verifies
with the same key. It is made once, by whichever node needs it first.
"""

from __future__ import annotations

from sqlalchemy import Column, LargeBinary, String, Table

from courriel.storage.models.base import UTCDateTime, metadata

__all__ = ["secrets"]

secrets = Table(
    "secrets",
    metadata,
    Column("name", String(64), primary_key=True),  # e.g. "links"
    Column("value", LargeBinary, nullable=False),  # random octets; never logged
    Column("created_at", UTCDateTime(), nullable=False),
)
