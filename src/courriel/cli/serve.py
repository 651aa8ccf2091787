"""``courriel serve``: run every role of one node until Ctrl-C or SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Mapping

import click

from courriel.app import HIGH_PORTS, ROLES, Node, high_port_overrides, open_services
from courriel.cli.common import CliContext, pass_cli, run_async
from courriel.config import load_config
from courriel.web.listener import http_listener

__all__ = ["COMMANDS", "serve"]


def _parse_roles(value: str) -> tuple[str, ...]:
    roles = tuple(r.strip() for r in value.split(",") if r.strip())
    unknown = [r for r in roles if r not in ROLES]
    if unknown or not roles:
        raise click.BadParameter(
            f"unknown role(s) {', '.join(unknown) or '(none)'}; known: {', '.join(ROLES)}",
            param_hint="--roles",
        )
    return roles


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


async def _serve(ctx: CliContext, roles: tuple[str, ...], high_ports: bool) -> None:
    overrides: Mapping[str, str] = dict(ctx.overrides)
    if high_ports:
        ctx.data_dir.mkdir(parents=True, exist_ok=True)
        loaded = load_config(ctx.data_dir, overrides)
        overrides = {**high_port_overrides(loaded), **overrides}
    async with open_services(ctx.data_dir, overrides) as services:
        _configure_logging(services.loaded.config.log.level)
        node = Node(services, roles=roles, http_factory=http_listener)
        await node.start()
        click.echo(f"courriel: data folder {services.loaded.data_dir}")
        for lst in node.listeners:
            host = f"[{lst.host}]" if ":" in lst.host else lst.host
            click.echo(f"courriel: {lst.name:<12} listening on {host}:{lst.port}  ({lst.key})")
        click.echo("courriel: ready (Ctrl-C to stop)", err=False)
        sys.stdout.flush()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            click.echo("courriel: stopping; letting transactions in flight finish", err=True)
            await node.stop(grace=10.0)
            click.echo("courriel: stopped", err=True)


@click.command()
@click.option(
    "--roles",
    default=",".join(ROLES),
    show_default=True,
    help="Comma-separated roles to run on this node.",
)
@click.option(
    "--high-ports",
    is_flag=True,
    help="Use unprivileged ports for listeners left at their default: "
    + ", ".join(f"{k} {v}" for k, v in HIGH_PORTS.items())
    + ".",
)
@pass_cli
def serve(ctx: CliContext, roles: str, high_ports: bool) -> None:
    """Run the node (SMTP, submission, IMAP, POP3, HTTP, delivery) until Ctrl-C or SIGTERM."""
    _install_uvloop()
    run_async(_serve)(ctx, _parse_roles(roles), high_ports)


def _install_uvloop() -> None:
    # uvloop makes the protocol servers 16-32 % faster (design.md); optional.
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    sys.setswitchinterval(0.0005)


COMMANDS = [serve]
