"""Core tables of courriel, all on one :data:`metadata` (see :mod:`.base`)."""

from courriel.storage.models.base import UTCDateTime, metadata, utcnow
from courriel.storage.models.mail import (
    accounts,
    aliases,
    blobs,
    changes,
    dkim_keys,
    domains,
    folders,
    maildrop_locks,
    messages,
    subscriptions,
)
from courriel.storage.models.queue import queue_attempts, queue_messages, queue_recipients

__all__ = [
    "UTCDateTime",
    "accounts",
    "aliases",
    "blobs",
    "changes",
    "dkim_keys",
    "domains",
    "folders",
    "maildrop_locks",
    "messages",
    "metadata",
    "queue_attempts",
    "queue_messages",
    "queue_recipients",
    "subscriptions",
    "utcnow",
]
