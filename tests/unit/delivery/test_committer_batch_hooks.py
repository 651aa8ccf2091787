"""The order in which the group committer runs a batch's ``on_commit`` hooks.

Batch hooks run first, one ``run_batch`` per kind (each group sorted by key, groups by
their smallest key, unkeyed groups last), then ordered hooks by key, then the rest in job
order: the lock order of the counter rows (committer module docstring).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import cast

import pytest
from sqlalchemy.engine import Connection

from courriel.delivery.committer import BatchHook, CommitJob, OrderedHook, _run_hooks
from courriel.storage.blobs import PreparedBlob

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
CONN = cast(Connection, object())  # hooks only pass it on; _run_hooks never touches it

Log = list[tuple[object, ...]]


@dataclass(frozen=True)
class KeyedBatch:
    """A batch hook with an ``order_key``: logs each ``run_batch`` with its hooks' keys."""

    kind: str
    key: tuple[int, ...]
    log: Log

    @property
    def order_key(self) -> tuple[int, ...]:
        return self.key

    @property
    def batch_kind(self) -> Hashable:
        return self.kind

    def run_batch(self, conn: Connection, hooks: Sequence[KeyedBatch | PlainBatch]) -> None:
        assert conn is CONN
        assert hooks[0] is self  # called on the group's first hook
        self.log.append(("batch", self.kind, *(_name(hook) for hook in hooks)))

    def __call__(self, conn: Connection) -> None:
        self.log.append(("alone", self.key))  # never, when the committer runs it


@dataclass(frozen=True)
class PlainBatch:
    """A batch hook without a key."""

    kind: str
    name: str
    log: Log

    @property
    def batch_kind(self) -> Hashable:
        return self.kind

    def run_batch(self, conn: Connection, hooks: Sequence[KeyedBatch | PlainBatch]) -> None:
        assert conn is CONN
        assert hooks[0] is self
        self.log.append(("batch", self.kind, *(_name(hook) for hook in hooks)))

    def __call__(self, conn: Connection) -> None:
        self.log.append(("alone", self.name))


@dataclass(frozen=True)
class Ordered:
    key: tuple[int, ...]
    log: Log

    @property
    def order_key(self) -> tuple[int, ...]:
        return self.key

    def __call__(self, conn: Connection) -> None:
        assert conn is CONN
        self.log.append(("ordered", self.key))


def _name(hook: KeyedBatch | PlainBatch) -> object:
    return hook.key if isinstance(hook, KeyedBatch) else hook.name


def _plain(name: str, log: Log) -> Callable[[Connection], None]:
    def hook(conn: Connection) -> None:
        assert conn is CONN
        log.append(("plain", name))

    return hook


def _job(hook: Callable[[Connection], None] | None) -> CommitJob:
    # _run_hooks reads on_commit alone: the rows of the job do not matter here.
    return CommitJob(
        sender="",
        account_ids=(),
        remote=(),
        blob=cast(PreparedBlob, None),
        size=0,
        trace_header=b"",
        internal_date=T0,
        on_commit=hook,
    )


def _run(hooks: Sequence[Callable[[Connection], None] | None]) -> None:
    _run_hooks(CONN, [_job(hook) for hook in hooks])


def test_the_fakes_match_the_protocols() -> None:
    log: Log = []
    assert isinstance(KeyedBatch("a", (1,), log), BatchHook)
    assert isinstance(KeyedBatch("a", (1,), log), OrderedHook)
    assert isinstance(PlainBatch("a", "x", log), BatchHook)
    assert not isinstance(PlainBatch("a", "x", log), OrderedHook)
    assert not isinstance(Ordered((1,), log), BatchHook)


def test_batch_groups_then_ordered_then_plain() -> None:
    log: Log = []
    _run(
        [
            _plain("p1", log),
            Ordered((5, 0), log),
            KeyedBatch("b", (4, 1), log),
            KeyedBatch("a", (3, 9), log),
            None,  # a job without a hook
            Ordered((1, 0), log),
            KeyedBatch("a", (3, 2), log),
            _plain("p2", log),
            KeyedBatch("b", (2, 7), log),
            KeyedBatch("a", (6, 0), log),
        ]
    )
    assert log == [
        ("batch", "b", (2, 7), (4, 1)),  # smallest key (2, 7) < (3, 2)
        ("batch", "a", (3, 2), (3, 9), (6, 0)),
        ("ordered", (1, 0)),  # ordered hooks after every group, whatever their keys
        ("ordered", (5, 0)),
        ("plain", "p1"),
        ("plain", "p2"),
    ]


def test_a_lone_batch_hook_runs_as_a_batch_of_one() -> None:
    log: Log = []
    _run([KeyedBatch("a", (1,), log)])
    assert log == [("batch", "a", (1,))]


def test_unkeyed_hooks_follow_the_keyed_ones_of_their_group_in_job_order() -> None:
    log: Log = []
    _run(
        [
            PlainBatch("a", "x", log),
            KeyedBatch("a", (2,), log),
            PlainBatch("a", "y", log),
            KeyedBatch("a", (1,), log),
        ]
    )
    assert log == [("batch", "a", (1,), (2,), "x", "y")]


def test_unkeyed_groups_run_after_keyed_groups_in_job_order() -> None:
    log: Log = []
    _run(
        [
            PlainBatch("u", "u1", log),
            Ordered((0,), log),
            PlainBatch("v", "v1", log),
            KeyedBatch("k", (9,), log),
            PlainBatch("u", "u2", log),
        ]
    )
    assert log == [
        ("batch", "k", (9,)),
        ("batch", "u", "u1", "u2"),
        ("batch", "v", "v1"),
        ("ordered", (0,)),
    ]


@pytest.mark.parametrize("kind", [1, ("campaign", 2), frozenset({"x"})])
def test_kinds_are_any_hashable(kind: Hashable) -> None:
    @dataclass(frozen=True)
    class Kinded(KeyedBatch):
        @property
        def batch_kind(self) -> Hashable:
            return kind

    log: Log = []
    _run([Kinded("k", (2,), log), Kinded("k", (1,), log)])
    assert log == [("batch", "k", (1,), (2,))]
