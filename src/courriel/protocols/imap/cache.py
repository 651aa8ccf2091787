"""A bounded LRU of parsed messages, shared by every session of one IMAP server.

This module owns the cache of :class:`~courriel.protocols.imap.mime.ParsedMessage`.
Invariants:

* Entries are keyed by the message row and its blob key: stored messages (trace header
  + body) never change, so an entry can never be stale.
* The sum of the cached messages' sizes stays within ``max_bytes``; a message larger
  than the budget is parsed and returned but not kept.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable

from courriel.protocols.imap.mime import ParsedMessage
from courriel.protocols.imap.searchcolumns import ColumnCache

__all__ = ["DEFAULT_BUDGET", "MessageCache"]

DEFAULT_BUDGET = 64 * 1024 * 1024  # octets of message data kept parsed


class MessageCache:
    """Parsed messages by ``(message_id, blob_key)``, least recently used out first.

    Args:
        max_bytes: the budget, in octets of message data.
    """

    def __init__(self, max_bytes: int = DEFAULT_BUDGET) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[tuple[int, str], ParsedMessage] = OrderedDict()
        self._bytes = 0
        self.hits = 0
        self.misses = 0
        # Header search columns over the same messages (shared by every session too).
        self.columns = ColumnCache()

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def used(self) -> int:
        """Octets of message data held now."""
        return self._bytes

    def peek(self, message_id: int, blob_key: str) -> ParsedMessage | None:
        """The cached parsed message (counted as a hit), or None without loading it."""
        key = (message_id, blob_key)
        hit = self._entries.get(key)
        if hit is not None:
            self._entries.move_to_end(key)
            self.hits += 1
        return hit

    async def get(
        self, message_id: int, blob_key: str, load: Callable[[], Awaitable[bytes]]
    ) -> ParsedMessage:
        """The parsed message, loading and parsing it with ``load`` when not cached.

        Args:
            message_id: the store's row id.
            blob_key: the body's key (part of the cache key).
            load: reads the full message octets (called at most once per miss).

        Raises:
            Whatever ``load`` raises (nothing is cached then).
        """
        hit = self.peek(message_id, blob_key)
        if hit is not None:
            return hit
        self.misses += 1
        parsed = ParsedMessage.parse(await load())
        self._put((message_id, blob_key), parsed)
        return parsed

    def _put(self, key: tuple[int, str], parsed: ParsedMessage) -> None:
        if parsed.size > self.max_bytes or key in self._entries:
            return
        self._entries[key] = parsed
        self._bytes += parsed.size
        while self._bytes > self.max_bytes:
            _, old = self._entries.popitem(last=False)
            self._bytes -= old.size
