"""What every CLI command shares: the context object, error reporting, running async code,
secrets read from stdin.

Errors go to stderr with exit status 1 (2 for usage errors, which click raises). Passwords
and secrets are read from the first line of stdin (``--password-stdin``), never from the
command line, where other users could see them in the process list.
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

__all__ = [
    "CliContext",
    "fail",
    "pass_cli",
    "password_stdin_option",
    "read_password",
    "read_stdin_line",
    "run_async",
    "stdin_option",
]

P = ParamSpec("P")
T = TypeVar("T")
FC = TypeVar("FC", bound=Callable[..., Any] | click.Command)


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


def stdin_option(flag: str, what: str) -> Callable[[FC], FC]:
    """The flag ``flag`` (``--secret-stdin``) saying ``what`` is on the first line of stdin.

    Args:
        flag: the option, ending in ``-stdin``; the command receives it as a bool
            parameter named after it (``secret_stdin``).
        what: the value, as the help text names it ("the webhook signing secret").
    """
    return click.option(
        flag, is_flag=True, help=f"Read {what} from the first line of stdin (required)."
    )


def read_stdin_line(given: bool, flag: str, what: str) -> str:
    """The first line of stdin without its line end; a usage error (exit 2) unless ``given``.

    Args:
        given: whether ``flag`` was on the command line.
        flag: the option that says the value is on stdin, for the error message.
        what: the value, for the error message ("the secret").
    """
    if not given:
        raise click.UsageError(f"give {what} on stdin with {flag}")
    return sys.stdin.readline().rstrip("\r\n")


password_stdin_option = stdin_option("--password-stdin", "the password")
"""``--password-stdin``, for the commands that set a password (``password_stdin: bool``)."""


def read_password(password_stdin: bool) -> str:
    """The password from the first line of stdin; a usage error without ``--password-stdin``."""
    return read_stdin_line(password_stdin, "--password-stdin", "the password")
