"""Aliases, catch-alls and recipient resolution.

An alias is ``local@domain`` or the catch-all ``@domain`` of a local domain; each row
maps it to one target, a local account or a remote address. Resolution order (first
match wins): exact account, exact alias, catch-all. Alias targets are expanded one
level only, so alias loops cannot happen.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import groupby

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from courriel.errors import AlreadyExists, InvalidInput, NotFound
from courriel.mail.address import normalize_address, normalize_domain, split_address
from courriel.mailstore.accounts import account_row
from courriel.mailstore.domains import domain_id
from courriel.mailstore.records import AliasInfo, Resolution
from courriel.storage.db import Database
from courriel.storage.models import accounts, aliases, domains

__all__ = ["add_alias", "list_aliases", "normalize_alias", "remove_alias", "resolve"]


def normalize_alias(alias: str) -> tuple[str, str]:
    """Return ``(alias, domain)`` in normal form; ``@domain`` is the catch-all.

    Raises:
        AddressError: the alias does not parse.
    """
    text = alias.strip()
    if text.startswith("@"):
        domain = normalize_domain(text[1:])
        return f"@{domain}", domain
    normal = normalize_address(text)
    return normal, split_address(normal)[1]


async def _check_target(conn: AsyncConnection, target: str) -> None:
    domain = split_address(target)[1]
    if await domain_id(conn, domain) is not None and await account_row(conn, target) is None:
        raise NotFound(f"target {target} is in a local domain but is not an account")


async def add_alias(db: Database, alias: str, targets: Sequence[str]) -> AliasInfo:
    """Add targets to an alias (creating it when new).

    Raises:
        AddressError: a bad alias or target. InvalidInput: no targets. NotFound: the
        alias's domain is not local, or a local target is not an account.
        AlreadyExists: the alias address is an account.
    """
    name, domain = normalize_alias(alias)
    wanted = sorted({normalize_address(t) for t in targets})
    if not wanted:
        raise InvalidInput("an alias needs at least one target")
    async with db.write() as conn:
        did = await domain_id(conn, domain)
        if did is None:
            raise NotFound(f"domain {domain} is not a local domain")
        if await account_row(conn, name) is not None:
            raise AlreadyExists(f"{name} is an account")
        for target in wanted:
            await _check_target(conn, target)
            stmt = db.insert_ignore(aliases).values(alias=name, domain_id=did, target=target)
            await conn.execute(stmt)
        rows = await conn.scalars(
            select(aliases.c.target).where(aliases.c.alias == name).order_by(aliases.c.target)
        )
        return AliasInfo(alias=name, targets=tuple(rows.all()))


async def list_aliases(db: Database) -> list[AliasInfo]:
    """Every alias with its targets, by alias."""
    async with db.read() as conn:
        rows = (
            await conn.execute(
                select(aliases.c.alias, aliases.c.target).order_by(
                    aliases.c.alias, aliases.c.target
                )
            )
        ).all()
    return [
        AliasInfo(alias=name, targets=tuple(r.target for r in group))
        for name, group in groupby(rows, key=lambda r: r.alias)
    ]


async def remove_alias(db: Database, alias: str, target: str | None = None) -> None:
    """Remove an alias, or only one of its targets.

    Raises:
        NotFound: no such alias (or target of it).
    """
    name, _ = normalize_alias(alias)
    stmt = delete(aliases).where(aliases.c.alias == name)
    if target is not None:
        stmt = stmt.where(aliases.c.target == normalize_address(target))
    async with db.write() as conn:
        result = await conn.execute(stmt)
        if result.rowcount == 0:
            what = f"alias {name}" if target is None else f"target {target} of alias {name}"
            raise NotFound(f"{what} does not exist")


async def resolve(db: Database, address: str) -> Resolution:
    """Where mail for ``address`` goes (see :class:`Resolution`).

    Raises:
        AddressError: the address does not parse.
    """
    normal = normalize_address(address)
    domain = split_address(normal)[1]
    async with db.read() as conn:
        if await domain_id(conn, domain) is None:
            return Resolution(local=False, account_ids=(), forward=(), known=False)
        row = await account_row(conn, normal)
        if row is not None:
            return Resolution(local=True, account_ids=(row.id,), forward=(), known=True)
        for candidate in (normal, f"@{domain}"):
            found = await _expand_targets(conn, candidate)
            if found is not None:
                return found
    return Resolution(local=True, account_ids=(), forward=(), known=False)


async def _expand_targets(conn: AsyncConnection, alias: str) -> Resolution | None:
    rows = (
        await conn.execute(
            select(aliases.c.target, accounts.c.id)
            .select_from(aliases)
            .outerjoin(accounts, accounts.c.address == aliases.c.target)
            .where(aliases.c.alias == alias)
        )
    ).all()
    if not rows:
        return None
    account_ids = sorted({int(r.id) for r in rows if r.id is not None})
    others = sorted({r.target for r in rows if r.id is None})
    # A target in a local domain that is no account (any more) is dropped.
    local = await _local_domains(conn, {split_address(t)[1] for t in others})
    forward = [t for t in others if split_address(t)[1] not in local]
    return Resolution(
        local=True, account_ids=tuple(account_ids), forward=tuple(forward), known=True
    )


async def _local_domains(conn: AsyncConnection, names: set[str]) -> set[str]:
    # One query for every domain of an alias's targets, none when there are none.
    if not names:
        return set()
    return set(await conn.scalars(select(domains.c.name).where(domains.c.name.in_(names))))
