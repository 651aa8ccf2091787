"""What every CLI command shares: the context object, error reporting, running async code.

Errors go to stderr with exit status 1 (2 for usage errors, which click raises).
"""

from __future__ import annotations

import asyncio
import functools
import sys
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import click

from courriel.errors import ConfigError, CourrielError

if TYPE_CHECKING:
    from courriel.app import Services

__all__ = ["CliContext", "fail", "pass_cli", "run_async"]

P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True, slots=True, kw_only=True)
class CliContext:
    """Options of the root ``courriel`` group, passed to every command."""

    data_dir: Path
    overrides: Mapping[str, str] = field(default_factory=dict)  # from --set SECTION.KEY=VALUE

    @asynccontextmanager
    async def services(self) -> AsyncIterator[Services]:
        """Open the data folder (creating and migrating it as needed) and its services."""
        from courriel.app import open_services

        async with open_services(self.data_dir, self.overrides) as services:
            yield services


pass_cli = click.make_pass_decorator(CliContext)


def fail(message: str) -> None:
    """Print an error to stderr and exit with status 1."""
    click.echo(f"courriel: error: {message}", err=True)
    sys.exit(1)


def run_async(func: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, T | None]:
    """Decorate an async command body: run it, turn CourrielError into exit status 1."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T | None:
        try:
            return asyncio.run(func(*args, **kwargs))
        except ConfigError as exc:
            click.echo("courriel: configuration errors:", err=True)
            for problem in exc.problems:
                click.echo(f"  {problem}", err=True)
            sys.exit(1)
        except CourrielError as exc:
            fail(str(exc))
        return None

    return wrapper
