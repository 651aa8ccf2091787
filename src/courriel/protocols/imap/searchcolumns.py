"""Header search columns: one field of a folder's messages as one string, shared.

SEARCH SUBJECT / FROM / HEADER over a 10,000-message folder used to test every message
in Python. A :class:`Column` holds the case-folded values of one field (or its address
form, for FROM, TO, CC and BCC) of a folder's messages, in UID order, joined into one
string; a search is then ``str.find`` (C speed) over that string, each hit mapped back
to its message by bisecting the start offsets. Columns are shared by every session of
the server (:class:`ColumnCache`, kept beside the parsed-message cache).

Invariants:
    * A column belongs to one folder incarnation of one account (account id, folder id
      and UIDVALIDITY; SQLite may give a deleted folder's id to another account's new
      folder): within it a UID always names the same immutable octets, so a value can
      never go stale.
    * Message ``i`` of a column has UID ``uids[i]`` and its part starts at
      ``starts[i]``; parts are joined by :data:`SEP`, a message's values by
      :data:`JOIN`. Neither can occur in a needle the column answers for
      (:func:`usable_needle`), so a hit never spans two values or two messages.
    * ``uids`` ascends. A column may hold messages a session's view no longer has
      (expunged), so its hits are only candidates: the caller intersects them with the
      view. A column is only used when it holds every UID of the view; it grows at its
      end as messages arrive and is rebuilt when expunged ones make up most of it.
"""

from __future__ import annotations

import bisect
from array import array
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from courriel.mailstore.imapport import MessageMeta
from courriel.protocols.imap.mime import ParsedMessage

__all__ = [
    "JOIN",
    "MAX_COLUMN_MESSAGES",
    "SEP",
    "Column",
    "ColumnCache",
    "usable_needle",
]

SEP = "\x00"  # between messages
JOIN = "\x01"  # between the values of one message
MAX_COLUMNS = 16  # columns kept per server, least recently used out first
MAX_COLUMN_MESSAGES = 250_000  # larger folders are searched message by message

Load = Callable[[MessageMeta], Awaitable[ParsedMessage | None]]


def usable_needle(needle: str) -> bool:
    """True when a column can answer a search for this (case-folded) needle."""
    return bool(needle) and SEP not in needle and JOIN not in needle


@dataclass(slots=True)
class Column:
    """The values of one field of a folder's messages, joined (see the module docstring)."""

    uids: list[int] = field(default_factory=list)
    uid_set: set[int] = field(default_factory=set)
    text: str = ""
    starts: array[int] = field(default_factory=lambda: array("q"))

    @property
    def last_uid(self) -> int:
        """The largest UID held (0 when empty)."""
        return self.uids[-1] if self.uids else 0

    def find(self, needle: str) -> set[int]:
        """UIDs of the messages one of whose values contains ``needle`` (case-folded)."""
        found: set[int] = set()
        text, starts, uids = self.text, self.starts, self.uids
        at = text.find(needle)
        while at >= 0:
            i = bisect.bisect_right(starts, at) - 1
            found.add(uids[i])
            if i + 1 >= len(starts):
                break
            # On from the next message: one hit per message is enough.
            at = text.find(needle, starts[i + 1])
        return found

    def extend(self, uids: list[int], parts: list[str]) -> None:
        """Add messages above :attr:`last_uid`, their parts in the same order."""
        pieces = [self.text] if self.uids else []
        position = len(self.text) + len(SEP) if self.uids else 0
        for part in parts:
            self.starts.append(position)
            position += len(part) + len(SEP)
            pieces.append(part)
        self.text = SEP.join(pieces)
        self.uids.extend(uids)
        self.uid_set.update(uids)


class ColumnCache:
    """Columns by (account, folder id, UIDVALIDITY, lower-case field, address form)."""

    def __init__(self, max_columns: int = MAX_COLUMNS) -> None:
        self.max_columns = max_columns
        self._entries: OrderedDict[tuple[int, int, int, str, bool], Column] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    async def column(
        self,
        folder: tuple[int, int, int],
        name: str,
        *,
        address: bool,
        view_uids: list[int],
        meta: dict[int, MessageMeta],
        load: Load,
    ) -> Column:
        """The column of field ``name`` holding at least every UID of ``view_uids``.

        Args:
            folder: the account id, the folder id and its UIDVALIDITY.
            name: the field name (any case).
            address: the address form (FROM, TO, CC, BCC) instead of the decoded text.
            view_uids: the session's UIDs, ascending.
            meta: the session's metadata by UID (for the UIDs the column lacks).
            load: the parsed message of a meta, or None when it is gone.
        """
        key = (*folder, name.lower(), address)
        col = self._entries.get(key)
        if col is None or len(col.uids) > 2 * len(view_uids) + 1000:
            col = Column()  # none yet, or mostly expunged messages
        start = bisect.bisect_right(view_uids, col.last_uid)
        if not col.uid_set.issuperset(view_uids[:start]):
            col, start = Column(), 0
        new = view_uids[start:]
        if new:
            parts: list[str] = []
            for uid in new:
                message = await load(meta[uid])
                values = () if message is None else message.search_values(name, address=address)
                parts.append(JOIN.join(values))
            # Another session may have grown the column while this one loaded.
            skip = bisect.bisect_right(new, col.last_uid)
            col.extend(new[skip:], parts[skip:])
        self._entries[key] = col
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_columns:
            self._entries.popitem(last=False)
        return col
