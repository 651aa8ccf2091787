"""A short-lived cache of recipient resolutions, so a busy MX does not query per RCPT.

Postfix's trivial-rewrite and proxymap cache lookups the same way. Entries live
``ttl`` seconds: a change made by another process (``courriel alias add`` while
``serve`` runs) is seen within that time; a change made through this process's
:class:`~courriel.mailstore.service.MailStore` clears the cache at once. A stale
positive entry is harmless: the delivery transaction re-reads the account and fails
with a temporary error if it is gone.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from courriel.mailstore.records import Resolution

__all__ = ["RouteCache"]


class RouteCache:
    """Maps a normalised address to its :class:`Resolution` for ``ttl`` seconds."""

    def __init__(
        self, ttl: float = 2.0, size: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._ttl = ttl
        self._size = size
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, Resolution]] = OrderedDict()

    def get(self, address: str) -> Resolution | None:
        """The cached resolution, or None when absent or expired."""
        entry = self._entries.get(address)
        if entry is None:
            return None
        expires, resolution = entry
        if self._clock() >= expires:
            del self._entries[address]
            return None
        return resolution

    def put(self, address: str, resolution: Resolution) -> None:
        """Remember a resolution; the oldest entry goes when the cache is full."""
        if self._ttl <= 0:
            return
        self._entries[address] = (self._clock() + self._ttl, resolution)
        self._entries.move_to_end(address)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        """Forget everything (after a change to domains, accounts or aliases)."""
        self._entries.clear()
