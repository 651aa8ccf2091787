"""Table output for ``list`` commands (rich), written to click's stdout."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence

import click
from rich.console import Console
from rich.table import Table

__all__ = ["print_table"]


def print_table(title: str, columns: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
    """Print rows as a table; an empty table prints a one-line note instead."""
    items = [list(r) for r in rows]
    if not items:
        click.echo(f"no {title.lower()}")
        return
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column, overflow="fold")
    for item in items:
        table.add_row(*item)
    # A console per call: it binds the stream click (or CliRunner) has at this moment.
    Console(file=sys.stdout, width=120).print(table)
