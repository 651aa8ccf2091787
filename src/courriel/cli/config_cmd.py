"""``courriel config show|defaults``: print the effective configuration or the documented defaults.

Neither command creates or changes anything: ``show`` works on a data folder that does
not exist yet (it shows the defaults, after environment variables and ``--set`` flags).
Configuration errors go to stderr, one line per problem, with exit status 1.
"""

from __future__ import annotations

import click

from courriel.cli.common import CliContext, pass_cli, run_async
from courriel.config import load_config, render_defaults, render_effective

__all__ = ["COMMANDS", "config"]


@click.group()
def config() -> None:
    """Show the configuration (courriel.toml < COURRIEL_* variables < --set)."""


@config.command()
@pass_cli
@run_async
async def show(cli_ctx: CliContext) -> None:
    """Print every key's effective value and where it comes from."""
    # run_async turns a ConfigError into one stderr line per problem and exit status 1.
    loaded = load_config(cli_ctx.data_dir, cli_ctx.overrides)
    click.echo(render_effective(loaded), nl=False)


@config.command()
def defaults() -> None:
    """Print a commented courriel.toml with every key, its documentation and its default."""
    click.echo(render_defaults(), nl=False)


COMMANDS = [config]
