"""``courriel domain add|list|remove|dns``: the domains whose mail is delivered here.

``add`` also gives the domain its DKIM keys (RFC 6376 RSA-2048, RFC 8463 Ed25519);
``dns`` prints the records to publish in zone-file syntax and, with ``--check``, asks
DNS (``dns.nameservers``) whether they are published.
"""

from __future__ import annotations

from datetime import UTC, datetime

import click

from courriel.cli.common import CliContext, fail, pass_cli, run_async
from courriel.cli.tables import print_table
from courriel.delivery.dkimkeys import (
    DkimKey,
    DnsRecord,
    RecordCheck,
    check_records,
    dns_records,
    ensure_keys,
)
from courriel.dns.resolver import DnsResolver

__all__ = ["COMMANDS", "domain"]


@click.group()
def domain() -> None:
    """Manage local domains."""


@domain.command("add")
@click.argument("name")
@pass_cli
@run_async
async def add(cli_ctx: CliContext, name: str) -> None:
    """Accept mail for NAME."""
    async with cli_ctx.services() as services:
        info = await services.mailstore.add_domain(name)
        created = await ensure_keys(services.db, info.name, today=datetime.now(UTC).date())
    click.echo(f"domain {info.name} added")
    _echo_keys(created)
    if created:
        click.echo(f"publish them with the records printed by: courriel domain dns {info.name}")


def _echo_keys(keys: list[DkimKey], *, err: bool = False) -> None:
    for key in keys:
        click.echo(f"DKIM key {key.selector} ({key.algorithm}) created", err=err)


@domain.command("list")
@pass_cli
@run_async
async def list_(cli_ctx: CliContext) -> None:
    """List local domains."""
    async with cli_ctx.services() as services:
        domains = await services.mailstore.list_domains()
    print_table(
        "Domains",
        ("Domain", "Created"),
        ((d.name, d.created_at.strftime("%Y-%m-%d %H:%M")) for d in domains),
    )


@domain.command("remove")
@click.argument("name")
@click.option("--force", is_flag=True, help="Also remove its accounts, their mail, and aliases.")
@pass_cli
@run_async
async def remove(cli_ctx: CliContext, name: str, force: bool) -> None:
    """Stop accepting mail for NAME (refused while it has accounts, unless --force)."""
    async with cli_ctx.services() as services:
        await services.mailstore.remove_domain(name, force=force)
    click.echo(f"domain {name} removed")


@domain.command("dns")
@click.argument("name")
@click.option("--check", is_flag=True, help="Ask DNS whether each record is published.")
@pass_cli
@run_async
async def dns_cmd(cli_ctx: CliContext, name: str, check: bool) -> None:
    """Print the DNS records NAME needs (MX, SPF, DKIM, DMARC, autoconfig).

    A domain without DKIM keys (added before keys existed) gets them now. With --check,
    each record is looked up and reported OK, MISSING, DIFFERENT or ERROR; the exit
    status is 1 unless all are OK.
    """
    async with cli_ctx.services() as services:
        created = await ensure_keys(services.db, name, today=datetime.now(UTC).date())
        config = services.loaded.config
        records = await dns_records(services.db, name, hostname=config.server.hostname)
    _echo_keys(created, err=True)
    if not check:
        _print_zone(records, config.server.hostname)
        return
    resolver = DnsResolver(nameservers=config.dns.nameservers, timeout=config.dns.timeout)
    checks = await check_records(resolver, records)
    for result in checks:
        click.echo(_check_line(result))
    bad = sum(1 for c in checks if c.status != "OK")
    if bad:
        fail(f"{bad} of {len(checks)} records are not published as expected")


def _print_zone(records: list[DnsRecord], hostname: str) -> None:
    click.echo(f"; DNS records for {records[0].name}, served by {hostname}")
    click.echo(f"; {hostname} also needs A/AAAA records (and PTR) for this server")
    for record in records:
        click.echo(record.zone_line())


def _check_line(result: RecordCheck) -> str:
    record = result.record
    line = f"{result.status:<9} {record.type:<5} {record.name}"
    if result.status == "ERROR":
        return f"{line}: {result.detail}"
    if result.status == "DIFFERENT":
        found = "; ".join(repr(v) for v in result.found)
        return f"{line}: expected {record.value!r}, found {found}"
    return line


COMMANDS = [domain]
