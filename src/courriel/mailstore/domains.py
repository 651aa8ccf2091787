"""Local domains: the domains whose mail is delivered here.

Removing a domain removes (only with ``force``) its accounts, aliases, folders and
messages through the foreign keys' ``ON DELETE CASCADE``, then frees the bodies no
longer referenced.
"""

from __future__ import annotations

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from courriel.errors import AddressError, AlreadyExists, InvalidInput, NotFound
from courriel.mail.address import normalize_domain
from courriel.mailstore.messages import free_blobs
from courriel.mailstore.records import DomainInfo
from courriel.storage.blobs import BlobStore
from courriel.storage.db import Database
from courriel.storage.models import accounts, aliases, domains, folders, messages, utcnow

__all__ = ["add_domain", "domain_id", "is_local_domain", "list_domains", "remove_domain"]


async def domain_id(conn: AsyncConnection, name: str) -> int | None:
    """The id of a local domain given in normal form, or None."""
    value = await conn.scalar(select(domains.c.id).where(domains.c.name == name))
    return None if value is None else int(value)


async def add_domain(db: Database, name: str) -> DomainInfo:
    """Make ``name`` a local domain.

    Raises:
        AddressError: not a domain name. AlreadyExists: it is local already.
    """
    domain = normalize_domain(name)
    now = utcnow()
    async with db.write() as conn:
        if await domain_id(conn, domain) is not None:
            raise AlreadyExists(f"domain {domain} exists already")
        new_id = await conn.scalar(
            insert(domains).values(name=domain, created_at=now).returning(domains.c.id)
        )
    return DomainInfo(id=int(new_id or 0), name=domain, created_at=now)


async def list_domains(db: Database) -> list[DomainInfo]:
    """Every local domain, by name."""
    async with db.read() as conn:
        rows = (await conn.execute(select(domains).order_by(domains.c.name))).all()
    return [DomainInfo(id=r.id, name=r.name, created_at=r.created_at) for r in rows]


async def is_local_domain(db: Database, name: str) -> bool:
    """True when ``name`` is one of our domains (False when it does not parse)."""
    try:
        domain = normalize_domain(name)
    except AddressError:
        return False
    async with db.read() as conn:
        return await domain_id(conn, domain) is not None


async def remove_domain(db: Database, blobs: BlobStore, name: str, *, force: bool = False) -> None:
    """Stop serving a domain.

    Args:
        force: also remove its accounts (with their mail) and aliases.

    Raises:
        NotFound: not a local domain. InvalidInput: it has accounts or aliases and
        ``force`` is False.
    """
    domain = normalize_domain(name)
    async with db.write() as conn:
        did = await domain_id(conn, domain)
        if did is None:
            raise NotFound(f"domain {domain} does not exist")
        n_accounts = await conn.scalar(
            select(func.count()).select_from(accounts).where(accounts.c.domain_id == did)
        )
        n_aliases = await conn.scalar(
            select(func.count()).select_from(aliases).where(aliases.c.domain_id == did)
        )
        if (n_accounts or n_aliases) and not force:
            raise InvalidInput(
                f"domain {domain} has {n_accounts} account(s) and {n_aliases} alias target(s);"
                " remove them first or use --force"
            )
        keys = (
            await conn.scalars(
                select(messages.c.blob_key)
                .distinct()
                .join(folders, folders.c.id == messages.c.folder_id)
                .join(accounts, accounts.c.id == folders.c.account_id)
                .where(accounts.c.domain_id == did)
            )
        ).all()
        # Alias rows elsewhere that pointed at this domain's accounts go too.
        account_addresses = select(accounts.c.address).where(accounts.c.domain_id == did)
        await conn.execute(delete(aliases).where(aliases.c.target.in_(account_addresses)))
        await conn.execute(delete(domains).where(domains.c.id == did))
    await free_blobs(db, blobs, keys)
