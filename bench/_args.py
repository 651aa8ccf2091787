"""Command-line and summary helpers shared by the benchmark scripts.

Every script compares servers side by side in one run, picks the median round per server,
and takes the same kinds of arguments; these helpers are those parts, written once.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Hashable, Sequence
from typing import TypeVar

__all__ = ["median_rows", "positive", "server_list"]

T = TypeVar("T")


def positive(value: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        number = int(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError("must be a whole number") from exc
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def server_list(known: Sequence[str]) -> Callable[[str], tuple[str, ...]]:
    """An argparse type: comma-separated names, each one of ``known``."""

    def parse(value: str) -> tuple[str, ...]:
        names = tuple(name.strip() for name in value.split(",") if name.strip())
        if not names or any(name not in known for name in names):
            raise argparse.ArgumentTypeError(f"choose among {','.join(known)}")
        return names

    return parse


def median_rows(
    rows: Sequence[T], *, group: Callable[[T], Hashable], score: Callable[[T], float]
) -> list[T]:
    """One row per group (in first-seen order): the round with the median score."""
    result: list[T] = []
    for key in dict.fromkeys(group(r) for r in rows):
        runs = sorted((r for r in rows if group(r) == key), key=score)
        result.append(runs[len(runs) // 2])
    return result
