"""Test helper: deliver a message into the SQL mail store the way SMTP does.

Owns one invariant: a delivery is blob first, then the rows in one write transaction,
then an in-process wake-up of the recipients' waiters after the commit (the order the
SMTP delivery path uses), so tests that deliver see exactly what a real delivery leaves.
"""

from __future__ import annotations

from collections.abc import Sequence

from courriel.mailstore.service import MailStore
from courriel.storage.models import utcnow

__all__ = ["deliver_to"]


async def deliver_to(
    store: MailStore, account_ids: Sequence[int], body: bytes, *, trace_header: bytes = b""
) -> list[int]:
    """Deliver ``body`` (prefixed by ``trace_header``) to each account's INBOX.

    Args:
        store: The mail store to write to.
        account_ids: Recipient accounts.
        body: The message octets stored as the blob.
        trace_header: Trace fields prepended when the message is read (may be empty).

    Returns:
        The new message ids, one per account, in ``account_ids`` order.
    """
    ref = await store.blobs.put(body)
    async with store.db.write() as conn:
        ids = await store.deliver(
            conn,
            account_ids=list(account_ids),
            blob_key=ref.key,
            size=len(trace_header) + ref.size,
            trace_header=trace_header,
            internal_date=utcnow(),
        )
    store.notify(account_ids)
    return ids
