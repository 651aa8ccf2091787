"""A campaign copy's send record: its recipient row turns ``sent``, its counters move.

:class:`MarkSent` is the ``on_commit`` hook the campaign sender gives each copy
(``Mailer.send(on_commit=…)``): it runs in the transaction that stores the message. The
group committer runs the hooks of a batch together (its ``BatchHook`` protocol, met
structurally: marketing does not import delivery), so a batch of copies costs one UPDATE
per (campaign, variant, send time) and one counter bump per day and per variant, not three
statements per copy.

Invariants:
- Exactly once: only a ``pending`` row turns ``sent``, and only the rows that did count:
  each UPDATE sets one variant and one time, so its row count (exact on both engines, as
  :func:`courriel.marketing.campaigns.stats.mark_first` relies on) is what its variant
  and day gain. A hook for a row already sent, skipped or failed changes nothing and
  counts nothing; two hooks for one row count it once.
- Lock order (PostgreSQL): the ``daily_stats`` ``sent`` row(s) first, by ascending day,
  then the ``campaign_stats`` rows in (campaign, variant) order, as every group committer
  batch takes them (see :mod:`courriel.marketing.dailystats`).
- One hook alone (``__call__``) is a batch of one: same statements, same effect.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import update
from sqlalchemy.engine import Connection

from courriel.marketing import dailystats
from courriel.marketing.campaigns import stats
from courriel.storage.models.campaigns import campaign_recipients

__all__ = ["MarkSent"]

# Recipient ids per UPDATE: far below SQLite's and asyncpg's bound-parameter limits.
_CHUNK = 1000


@dataclass(frozen=True, slots=True, kw_only=True)
class MarkSent:
    """A copy's ``on_commit``: its row turns ``sent``, its variant's and day's ``sent`` move.

    The committer runs a batch's ``MarkSent`` hooks in one :meth:`run_batch` call (their
    ``batch_kind`` is this class), sorted by ``order_key``.
    """

    campaign_id: int
    variant_id: int
    recipient_id: int
    now: datetime

    @property
    def order_key(self) -> tuple[int, ...]:
        """(campaign, variant, recipient): the order the committer sorts hooks by."""
        return (self.campaign_id, self.variant_id, self.recipient_id)

    @property
    def batch_kind(self) -> Hashable:
        """This class: every ``MarkSent`` of a batch runs in one :meth:`run_batch`."""
        return MarkSent

    def __call__(self, conn: Connection) -> None:
        """Mark this copy alone (a batch of one)."""
        self.run_batch(conn, (self,))

    @classmethod
    def run_batch(cls, conn: Connection, hooks: Sequence[MarkSent]) -> None:
        """Mark every copy of ``hooks`` sent in ``conn``; count the rows that changed.

        Statements: one UPDATE per (campaign, variant, ``now``) and 1,000 ids,
        then one ``daily_stats`` bump per day, then one ``campaign_stats`` bump per
        (campaign, variant) that changed rows, in that order (lock order).
        """
        changed = _mark_pending(conn, hooks)
        per_day: Counter[date] = Counter()
        at: dict[date, datetime] = {}
        per_variant: Counter[tuple[int, int]] = Counter()
        for (campaign_id, variant_id, now), count in changed.items():
            day = dailystats.day_of(now)
            per_day[day] += count
            at.setdefault(day, now)
            per_variant[campaign_id, variant_id] += count
        for day in sorted(per_day):
            dailystats.bump(conn, "sent", at[day], n=per_day[day])
        for (campaign_id, variant_id), count in sorted(per_variant.items()):
            stats.bump(conn, campaign_id, variant_id, sent=count)


def _mark_pending(
    conn: Connection, hooks: Sequence[MarkSent]
) -> dict[tuple[int, int, datetime], int]:
    """Turn the hooks' ``pending`` rows ``sent``: rows changed per (campaign, variant, now).

    Groups run in (campaign, variant) order, then in order of first appearance.
    """
    groups: dict[tuple[int, int, datetime], set[int]] = {}
    for hook in hooks:
        key = (hook.campaign_id, hook.variant_id, hook.now)
        groups.setdefault(key, set()).add(hook.recipient_id)
    changed: dict[tuple[int, int, datetime], int] = {}
    for key in sorted(groups, key=lambda k: k[:2]):
        _campaign_id, variant_id, now = key
        ids = sorted(groups[key])
        changed[key] = sum(
            _mark_chunk(conn, ids[start : start + _CHUNK], variant_id, now)
            for start in range(0, len(ids), _CHUNK)
        )
    return changed


def _mark_chunk(conn: Connection, ids: Sequence[int], variant_id: int, now: datetime) -> int:
    """One UPDATE of the ``pending`` rows among ``ids``; how many it changed."""
    result = conn.execute(
        update(campaign_recipients)
        .where(campaign_recipients.c.id.in_(ids), campaign_recipients.c.status == "pending")
        .values(status="sent", sent_at=now, variant_id=variant_id)
    )
    return int(result.rowcount)
