"""The ``courriel`` command: the root group and the registry of command modules."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import click

from courriel import __version__
from courriel.cli.common import CliContext

__all__ = ["cli", "main"]


def _parse_overrides(values: tuple[str, ...]) -> dict[str, str]:
    overrides: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or "." not in key:
            raise click.BadParameter(
                f"expected SECTION.KEY=VALUE, got {item!r}", param_hint="--set"
            )
        overrides[key.strip()] = value
    return overrides


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="COURRIEL_DATA_DIR",
    default=Path("courriel-data"),
    show_default=True,
    help="Data folder (config, database, blobs, keys). Env: COURRIEL_DATA_DIR.",
)
@click.option(
    "--set",
    "-o",
    "overrides",
    multiple=True,
    metavar="SECTION.KEY=VALUE",
    help="Override one config key (highest precedence); repeatable.",
)
@click.version_option(__version__, prog_name="courriel")
@click.pass_context
def cli(ctx: click.Context, data_dir: Path, overrides: tuple[str, ...]) -> None:
    """courriel: your shop's mail server and email marketing, in one program."""
    ctx.obj = CliContext(data_dir=data_dir, overrides=_parse_overrides(overrides))


# Modules of ``courriel.cli`` that add command groups (each has a ``COMMANDS`` tuple).
_COMMAND_MODULES = (
    "admin_cmd",
    "account",
    "alias",
    "apikey",
    "campaigns",
    "config_cmd",
    "contacts",
    "db_cmd",
    "domain",
    "integration",
    "lists",
    "queue_cmd",
    "serve",
    "templates",
    "tracker",
)


def _register() -> None:
    # Each module adds its commands to ``cli``; imported here so that ``courriel
    # --help`` lists them all.
    for name in _COMMAND_MODULES:
        module = importlib.import_module(f"courriel.cli.{name}")
        for command in module.COMMANDS:
            cli.add_command(command)


def main() -> None:
    """Console-script entry point."""
    _register()
    sys.exit(cli.main(prog_name="courriel"))
