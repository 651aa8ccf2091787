"""Idle SMTP sessions kept between delivery rounds (Postfix's connection cache).

A campaign queues its copies a few at a time, so the worker runs many small rounds; without
a cache each round opens (TCP, greeting, EHLO, STARTTLS) and closes (QUIT) a session per
destination for one or two messages. A lane whose destination has nothing more to send in
its round parks its session here instead of closing it; the next round's lane to the same
host and address takes it back.

Invariants:
- A session is reused only while ``idle_limit`` has not passed since it was parked (2 s,
  as Postfix's ``smtp_connection_cache_time_limit``), it has carried fewer than
  ``max_messages`` messages in all, and the peer has not closed it meanwhile
  (``Connection.reusable``); anything else is closed (QUIT), never handed out.
- The per-domain connection limit still holds: a parked session belongs to no lane, and a
  lane holds one session at a time, cached or new.
- :meth:`ConnectionCache.close` says QUIT to every parked session.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from courriel.delivery.transport import Connection

__all__ = ["ConnectionCache", "Parked"]

Key = tuple[str, str, int]  # MX host name, IP address, port


@dataclass(slots=True)
class Parked:
    """A session handed back with the number of messages it has carried."""

    conn: Connection
    sent: int
    since: float = 0.0


@dataclass(slots=True)
class ConnectionCache:
    """Parked sessions by (host, address, port), newest last."""

    idle_limit: float = 2.0
    max_messages: int = 100
    clock: Callable[[], float] = time.monotonic
    _idle: dict[Key, list[Parked]] = field(default_factory=dict)
    _closing: set[asyncio.Task[None]] = field(default_factory=set)
    _pruned: float = 0.0  # when prune last ran

    def take(self, host: str, address: str, port: int) -> Parked | None:
        """The newest usable session to ``address`` for ``host``, or None."""
        key = (host, address, port)
        parked = self._idle.get(key)
        while parked:
            entry = parked.pop()
            if self._usable(entry):
                return entry
            self._close_later(entry.conn)
        self._idle.pop(key, None)
        return None

    def put(self, host: str, address: str, port: int, conn: Connection, sent: int) -> None:
        """Park ``conn`` (which has carried ``sent`` messages) or close it when spent."""
        entry = Parked(conn, sent, self.clock())
        if not self._usable(entry):
            self._close_later(conn)
            return
        self._idle.setdefault((host, address, port), []).append(entry)
        if entry.since - self._pruned >= self.idle_limit / 2:
            self.prune()  # now and then: a busy worker may never be idle to do it

    def prune(self) -> None:
        """Close the sessions whose idle time is over (in the background)."""
        self._pruned = self.clock()
        for key in list(self._idle):
            keep = []
            for entry in self._idle[key]:
                if self._usable(entry):
                    keep.append(entry)
                else:
                    self._close_later(entry.conn)
            if keep:
                self._idle[key] = keep
            else:
                del self._idle[key]

    async def close(self) -> None:
        """QUIT every parked session and wait for the closes under way."""
        for entries in self._idle.values():
            for entry in entries:
                self._close_later(entry.conn)
        self._idle.clear()
        await asyncio.gather(*self._closing, return_exceptions=True)

    def __len__(self) -> int:
        return sum(len(entries) for entries in self._idle.values())

    def _usable(self, entry: Parked) -> bool:
        return (
            entry.sent < self.max_messages
            and self.clock() - entry.since < self.idle_limit
            and entry.conn.reusable
        )

    def _close_later(self, conn: Connection) -> None:
        task = asyncio.ensure_future(conn.close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)
