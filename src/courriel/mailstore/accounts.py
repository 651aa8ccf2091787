"""Accounts: creation with their special-use folders, passwords, removal, principals.

Invariants: an account's address is in normal form and its domain is local; every
account has the folders of :data:`courriel.mailstore.types.SPECIAL_FOLDERS`; each new
folder gets a UIDVALIDITY larger than any given before on this database (epoch seconds
or more), so a re-created folder never repeats one (RFC 9051 §2.3.1.1).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from courriel.errors import AlreadyExists, NotFound
from courriel.mail.address import normalize_address, normalize_domain, split_address
from courriel.mailstore.domains import domain_id
from courriel.mailstore.messages import free_blobs
from courriel.mailstore.passwords import Passwords
from courriel.mailstore.records import AccountInfo
from courriel.mailstore.types import SPECIAL_FOLDERS, Principal
from courriel.storage.blobs import BlobStore
from courriel.storage.db import Database
from courriel.storage.models import accounts, aliases, domains, folders, messages, utcnow

__all__ = [
    "AccountRow",
    "account_row",
    "add_account",
    "create_folders",
    "list_accounts",
    "load_principal",
    "remove_account",
    "set_password",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountRow:
    """What authentication needs of an account row."""

    id: int
    address: str
    password_hash: str


async def account_row(conn: AsyncConnection, address: str) -> AccountRow | None:
    """The account with this normal-form address, or None."""
    row = (
        await conn.execute(
            select(accounts.c.id, accounts.c.address, accounts.c.password_hash).where(
                accounts.c.address == address
            )
        )
    ).first()
    if row is None:
        return None
    return AccountRow(id=int(row.id), address=row.address, password_hash=row.password_hash)


async def create_folders(conn: AsyncConnection, account_id: int) -> None:
    """Create the special-use folders of a new account."""
    highest = await conn.scalar(select(func.max(folders.c.uidvalidity)))
    base = max(int(time.time()), int(highest or 0) + 1)
    await conn.execute(
        insert(folders),
        [
            {
                "account_id": account_id,
                "name": name,
                "special_use": role,
                "uidvalidity": base + index,
                "uidnext": 1,
                "highest_modseq": 0,
                "subscribed": True,
            }
            for index, (name, role) in enumerate(SPECIAL_FOLDERS)
        ],
    )


async def add_account(
    db: Database, passwords: Passwords, address: str, password: str
) -> AccountInfo:
    """Create an account in a local domain.

    Raises:
        AddressError, InvalidInput: bad address or password. NotFound: the domain is
        not local. AlreadyExists: the account (or an alias of that address) exists.
    """
    normal = normalize_address(address)
    domain = split_address(normal)[1]
    password_hash = await passwords.hash(password)
    now = utcnow()
    async with db.write() as conn:
        did = await domain_id(conn, domain)
        if did is None:
            raise NotFound(f"domain {domain} is not a local domain")
        if await account_row(conn, normal) is not None:
            raise AlreadyExists(f"account {normal} exists already")
        if await conn.scalar(select(aliases.c.id).where(aliases.c.alias == normal).limit(1)):
            raise AlreadyExists(f"{normal} is an alias already")
        new_id = await conn.scalar(
            insert(accounts)
            .values(address=normal, domain_id=did, password_hash=password_hash, created_at=now)
            .returning(accounts.c.id)
        )
        account_id = int(new_id or 0)
        await create_folders(conn, account_id)
    return AccountInfo(id=account_id, address=normal, domain=domain, created_at=now)


async def list_accounts(db: Database, domain: str | None = None) -> list[AccountInfo]:
    """Every account (of one domain when given), by address."""
    query = (
        select(accounts.c.id, accounts.c.address, accounts.c.created_at, domains.c.name)
        .join(domains, domains.c.id == accounts.c.domain_id)
        .order_by(accounts.c.address)
    )
    if domain is not None:
        query = query.where(domains.c.name == normalize_domain(domain))
    async with db.read() as conn:
        rows = (await conn.execute(query)).all()
    return [
        AccountInfo(id=r.id, address=r.address, domain=r.name, created_at=r.created_at)
        for r in rows
    ]


async def set_password(db: Database, passwords: Passwords, address: str, password: str) -> None:
    """Replace an account's password.

    Raises:
        NotFound: no such account. InvalidInput: unusable password.
    """
    normal = normalize_address(address)
    password_hash = await passwords.hash(password)
    async with db.write() as conn:
        result = await conn.execute(
            update(accounts).where(accounts.c.address == normal).values(password_hash=password_hash)
        )
        if result.rowcount == 0:
            raise NotFound(f"account {normal} does not exist")


async def remove_account(db: Database, blobs: BlobStore, address: str) -> None:
    """Remove an account, its folders and messages, and alias targets naming it.

    Raises:
        NotFound: no such account.
    """
    normal = normalize_address(address)
    async with db.write() as conn:
        row = await account_row(conn, normal)
        if row is None:
            raise NotFound(f"account {normal} does not exist")
        keys = (
            await conn.scalars(
                select(messages.c.blob_key)
                .distinct()
                .join(folders, folders.c.id == messages.c.folder_id)
                .where(folders.c.account_id == row.id)
            )
        ).all()
        await conn.execute(delete(aliases).where(aliases.c.target == normal))
        await conn.execute(delete(accounts).where(accounts.c.id == row.id))
    await free_blobs(db, blobs, keys)


async def load_principal(conn: AsyncConnection, account_id: int, address: str) -> Principal:
    """The principal of an account: it may send as itself and as its aliases.

    Catch-all aliases (``@domain``) do not make every address of the domain a sender.
    """
    alias_rows = await conn.scalars(
        select(aliases.c.alias).where(aliases.c.target == address, ~aliases.c.alias.startswith("@"))
    )
    return Principal(
        account_id=account_id,
        address=address,
        senders=frozenset({address, *alias_rows.all()}),
    )
