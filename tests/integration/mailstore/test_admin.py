"""MailStore admin API: domains, accounts, aliases, resolution, authentication."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from courriel.errors import AddressError, AlreadyExists, InvalidInput, NotFound
from courriel.mailstore.service import MailStore
from courriel.mailstore.types import SPECIAL_FOLDERS
from courriel.storage.blobs import BlobStore
from courriel.storage.db import Database
from courriel.storage.models import accounts, folders


async def test_domains(mailstore: MailStore) -> None:
    info = await mailstore.add_domain("Example.TEST.")
    assert info.name == "example.test"
    idn = await mailstore.add_domain("bücher.test")
    assert idn.name == "xn--bcher-kva.test"
    with pytest.raises(AlreadyExists):
        await mailstore.add_domain("example.test")
    with pytest.raises(AddressError):
        await mailstore.add_domain("no spaces.test")
    assert [d.name for d in await mailstore.list_domains()] == ["example.test", idn.name]
    assert await mailstore.is_local_domain("EXAMPLE.test")
    assert not await mailstore.is_local_domain("other.test")
    assert not await mailstore.is_local_domain("")
    await mailstore.remove_domain("bücher.test")
    with pytest.raises(NotFound):
        await mailstore.remove_domain("bücher.test")


async def test_remove_domain_in_use(mailstore: MailStore) -> None:
    await mailstore.add_domain("example.test")
    await mailstore.add_account("a@example.test", "pw")
    await mailstore.add_alias("b@example.test", ["a@example.test"])
    with pytest.raises(InvalidInput):
        await mailstore.remove_domain("example.test")
    await mailstore.remove_domain("example.test", force=True)
    assert await mailstore.list_accounts() == []
    assert await mailstore.list_aliases() == []
    assert await mailstore.list_domains() == []


async def test_accounts(mailstore: MailStore) -> None:
    with pytest.raises(NotFound):
        await mailstore.add_account("a@example.test", "pw")
    await mailstore.add_domain("example.test")
    await mailstore.add_domain("other.test")
    info = await mailstore.add_account("Alice@Example.test", "secret")
    assert info.address == "alice@example.test" and info.domain == "example.test"
    await mailstore.add_account("bob@other.test", "pw")
    with pytest.raises(AlreadyExists):
        await mailstore.add_account("ALICE@example.test", "x")
    with pytest.raises(InvalidInput):
        await mailstore.add_account("carol@example.test", "")
    assert [a.address for a in await mailstore.list_accounts()] == [
        "alice@example.test",
        "bob@other.test",
    ]
    assert [a.address for a in await mailstore.list_accounts("other.test")] == ["bob@other.test"]
    async with mailstore.db.read() as conn:
        rows = (
            await conn.execute(
                select(folders.c.name, folders.c.special_use, folders.c.uidvalidity).where(
                    folders.c.account_id == info.id
                )
            )
        ).all()
    assert sorted((r.name, r.special_use) for r in rows) == sorted(SPECIAL_FOLDERS)
    assert len({r.uidvalidity for r in rows}) == len(rows)
    await mailstore.remove_account("alice@example.test")
    with pytest.raises(NotFound):
        await mailstore.remove_account("alice@example.test")
    with pytest.raises(NotFound):
        await mailstore.set_password("alice@example.test", "pw")


async def test_authenticate(mailstore: MailStore) -> None:
    await mailstore.add_domain("example.test")
    account = await mailstore.add_account("alice@example.test", "right")
    principal = await mailstore.authenticate("Alice@EXAMPLE.test", "right")
    assert principal is not None
    assert principal.account_id == account.id
    assert principal.address == "alice@example.test"
    assert await mailstore.authenticate("alice@example.test", "wrong") is None
    assert await mailstore.authenticate("nobody@example.test", "right") is None
    assert await mailstore.authenticate("not an address", "right") is None
    await mailstore.set_password("alice@example.test", "new")
    assert await mailstore.authenticate("alice@example.test", "right") is None
    assert await mailstore.authenticate("alice@example.test", "new") is not None


async def test_rehash_when_parameters_change(
    database: Database, blobs: BlobStore, password_hasher: PasswordHasher
) -> None:
    old = MailStore(database, blobs, hasher=password_hasher)
    await old.add_domain("example.test")
    await old.add_account("a@example.test", "pw")
    new = MailStore(
        database, blobs, hasher=PasswordHasher(time_cost=2, memory_cost=8, parallelism=1)
    )
    assert await new.authenticate("a@example.test", "pw") is not None
    async with database.read() as conn:
        stored = await conn.scalar(select(accounts.c.password_hash))
    assert "t=2" in stored
    assert await new.authenticate("a@example.test", "pw") is not None


async def test_aliases_and_resolve(mailstore: MailStore) -> None:
    await mailstore.add_domain("example.test")
    alice = await mailstore.add_account("alice@example.test", "pw")
    bob = await mailstore.add_account("bob@example.test", "pw")
    info = await mailstore.add_alias("team@example.test", ["alice@example.test", "x@remote.test"])
    assert info.targets == ("alice@example.test", "x@remote.test")
    info = await mailstore.add_alias(
        "TEAM@example.test", ["bob@example.test", "alice@example.test"]
    )
    assert info.targets == ("alice@example.test", "bob@example.test", "x@remote.test")
    with pytest.raises(NotFound):
        await mailstore.add_alias("x@other.test", ["alice@example.test"])
    with pytest.raises(NotFound):
        await mailstore.add_alias("y@example.test", ["ghost@example.test"])
    with pytest.raises(AlreadyExists):
        await mailstore.add_alias("bob@example.test", ["alice@example.test"])
    with pytest.raises(InvalidInput):
        await mailstore.add_alias("z@example.test", [])

    team = await mailstore.resolve("team@example.test")
    assert team.local and team.known
    assert team.account_ids == tuple(sorted((alice.id, bob.id)))
    assert team.forward == ("x@remote.test",)

    direct = await mailstore.resolve("Bob@example.test")
    assert (direct.account_ids, direct.forward, direct.known) == ((bob.id,), (), True)

    unknown = await mailstore.resolve("nobody@example.test")
    assert unknown.local and not unknown.known and unknown.account_ids == ()

    remote = await mailstore.resolve("someone@remote.test")
    assert not remote.local and not remote.known

    await mailstore.add_alias("@example.test", ["bob@example.test"])
    catch = await mailstore.resolve("nobody@example.test")
    assert catch.known and catch.account_ids == (bob.id,)
    # An exact alias wins over the catch-all.
    assert (await mailstore.resolve("team@example.test")).forward == ("x@remote.test",)

    principal = await mailstore.principal("alice@example.test")
    assert principal.senders == {"alice@example.test", "team@example.test"}
    assert (await mailstore.principal("bob@example.test")).senders == {
        "bob@example.test",
        "team@example.test",
    }

    listed = {a.alias: a.targets for a in await mailstore.list_aliases()}
    assert listed["@example.test"] == ("bob@example.test",)
    await mailstore.remove_alias("team@example.test", "x@remote.test")
    assert (await mailstore.resolve("team@example.test")).forward == ()
    await mailstore.remove_alias("team@example.test")
    with pytest.raises(NotFound):
        await mailstore.remove_alias("team@example.test")
    # Removing an account drops the alias targets naming it.
    await mailstore.remove_account("bob@example.test")
    assert await mailstore.list_aliases() == []
