"""The mail store service: the one object the rest of courriel calls for mail data.

``MailStore`` is a thin facade over the modules of this package (domains, accounts,
aliases, messages, maildrop, change feed); it implements ``Authenticator`` and
``MaildropPort`` of :mod:`courriel.mailstore.types` structurally. Addresses are
normalised with :mod:`courriel.mail.address` on the way in; errors come from
:mod:`courriel.errors`. Rows never leave these modules: only frozen dataclasses do.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from functools import partial

from argon2 import PasswordHasher
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection

from courriel.errors import AddressError, NotFound
from courriel.mail.address import normalize_address
from courriel.mailstore import accounts as _accounts
from courriel.mailstore import aliases as _aliases
from courriel.mailstore import domains as _domains
from courriel.mailstore import messages as _messages
from courriel.mailstore.changes import ChangeFeed
from courriel.mailstore.imapstore import SqlImapStore
from courriel.mailstore.maildrop import DEFAULT_LEASE, SqlMaildrop, open_maildrop
from courriel.mailstore.passwords import Passwords
from courriel.mailstore.records import AccountInfo, AliasInfo, DomainInfo, Resolution
from courriel.mailstore.routecache import RouteCache
from courriel.mailstore.types import Principal
from courriel.storage.blobs import BlobStore
from courriel.storage.db import Database
from courriel.storage.models import accounts, utcnow

__all__ = ["AccountInfo", "AliasInfo", "DomainInfo", "MailStore", "Resolution"]


class MailStore:
    """Domains, accounts, aliases, delivery into INBOX, change feed and POP3 maildrops.

    Args:
        db: the opened, migrated database.
        blobs: where message bodies live.
        hasher: the argon2id hasher (tests pass a cheap one); default parameters otherwise.
        clock: the current time, timezone-aware (injected by tests for lease expiry).
        maildrop_lease: how long a POP3 lease lives without use.
        poll_interval: how often waiters poll for changes made by other processes.
        route_cache_ttl: seconds a recipient resolution is reused (0 turns the cache off).
    """

    def __init__(
        self,
        db: Database,
        blobs: BlobStore,
        hasher: PasswordHasher | None = None,
        *,
        clock: Callable[[], datetime] = utcnow,
        maildrop_lease: timedelta = DEFAULT_LEASE,
        poll_interval: float = 0.5,
        route_cache_ttl: float = 2.0,
    ) -> None:
        self.db = db
        self.blobs = blobs
        self.passwords = Passwords(hasher)
        self.feed = ChangeFeed(db, poll_interval=poll_interval)
        self._clock = clock
        self._lease = maildrop_lease
        self.routes = RouteCache(ttl=route_cache_ttl)
        # The relaying resolution in flight per recipient domain (see _resolve_shared).
        self._probes: dict[str, asyncio.Task[Resolution]] = {}
        # The IMAP port (issue 4): folders and messages as IMAP sessions see them.
        self.imap = SqlImapStore(db, blobs, self.feed)

    # Domains.
    async def add_domain(self, name: str) -> DomainInfo:
        """Make a domain local. Raises AddressError, AlreadyExists."""
        self.routes.clear()
        return await _domains.add_domain(self.db, name)

    async def list_domains(self) -> list[DomainInfo]:
        """Every local domain, by name."""
        return await _domains.list_domains(self.db)

    async def remove_domain(self, name: str, *, force: bool = False) -> None:
        """Remove a domain; with ``force`` its accounts, mail and aliases too.

        Raises NotFound, or InvalidInput when it is in use and not forced.
        """
        self.routes.clear()
        await _domains.remove_domain(self.db, self.blobs, name, force=force)

    async def is_local_domain(self, name: str) -> bool:
        """True when mail for this domain is delivered here."""
        return await _domains.is_local_domain(self.db, name)

    # Accounts.
    async def add_account(self, address: str, password: str) -> AccountInfo:
        """Create an account with its folders. Raises NotFound, AlreadyExists, InvalidInput."""
        self.routes.clear()
        return await _accounts.add_account(self.db, self.passwords, address, password)

    async def list_accounts(self, domain: str | None = None) -> list[AccountInfo]:
        """Every account, or those of one domain, by address."""
        return await _accounts.list_accounts(self.db, domain)

    async def set_password(self, address: str, password: str) -> None:
        """Replace a password. Raises NotFound, InvalidInput."""
        await _accounts.set_password(self.db, self.passwords, address, password)

    async def remove_account(self, address: str) -> None:
        """Remove an account with its folders and mail. Raises NotFound."""
        self.routes.clear()
        await _accounts.remove_account(self.db, self.blobs, address)

    # Aliases and routing.
    async def add_alias(self, alias: str, targets: Sequence[str]) -> AliasInfo:
        """Add targets to ``x@domain`` or the catch-all ``@domain``."""
        self.routes.clear()
        return await _aliases.add_alias(self.db, alias, targets)

    async def list_aliases(self) -> list[AliasInfo]:
        """Every alias with its targets."""
        return await _aliases.list_aliases(self.db)

    async def remove_alias(self, alias: str, target: str | None = None) -> None:
        """Remove an alias or one of its targets. Raises NotFound."""
        self.routes.clear()
        await _aliases.remove_alias(self.db, alias, target)

    async def resolve(self, address: str, *, relaying: bool = False) -> Resolution:
        """Where mail for ``address`` goes: account, alias, then catch-all (cached briefly).

        ``relaying``: the sender may relay (an authenticated submission, mail courriel
        originates), so a domain seen as not local within the cache's lifetime is taken as
        still remote without a query: a campaign to 100,000 remote addresses reads the
        domains table once per domain and TTL instead of once per copy. A domain made local
        meanwhile by another process gets that mail through its MX, like any relayed mail.
        Concurrent relaying misses in one domain share that read too (a campaign's sending
        tasks all miss a cold cache at once): see :meth:`_resolve_shared`.
        Without ``relaying`` (the MX listener) a remote answer is never reused, not even
        one in flight: it would be a permanent 550 for a domain added a moment ago.
        """
        if relaying:
            remote = self.routes.get(_REMOTE_KEY + _domain_of(address))
            if remote is not None:
                return remote
        cached = self.routes.get(address)
        if cached is not None:
            return cached
        if relaying:
            return await self._resolve_shared(address)
        return await self._resolve_uncached(address)

    async def _resolve_shared(self, address: str) -> Resolution:
        """Resolve a relaying miss, one read per domain for concurrent misses.

        The first miss in a domain reads its own address in a task (the probe); the
        misses meanwhile in that domain await the probe. A remote answer says nothing
        about the address, so it is every waiter's answer; a local domain sends each
        waiter to its own read (unknown local addresses are still never cached). A probe
        whose address does not parse (AddressError) or that was cancelled answers no
        one: the waiters try again. Any other failure of the probe is every waiter's.
        """
        domain = _domain_of(address)
        while True:
            probe = self._probes.get(domain)
            if probe is None or probe.done():
                probe = asyncio.create_task(self._resolve_uncached(address))
                self._probes[domain] = probe
                probe.add_done_callback(partial(self._forget_probe, domain))
                # wait() neither raises the probe's exception nor cancels it with us.
                await asyncio.wait((probe,))
                if probe.cancelled():
                    continue
                return probe.result()
            await asyncio.wait((probe,))
            if probe.cancelled() or isinstance(probe.exception(), AddressError):
                continue
            answer = probe.result()  # raises the probe's failure
            if not answer.local:
                return answer
            return await self._resolve_uncached(address)

    async def _resolve_uncached(self, address: str) -> Resolution:
        """Read where ``address`` goes and cache the answers that may be reused."""
        resolution = await _aliases.resolve(self.db, address)
        # Only known addresses are cached: an account added a moment ago must never
        # be refused with a permanent 550 because of a stale "unknown" entry.
        if resolution.known:
            self.routes.put(address, resolution)
        elif not resolution.local:
            self.routes.put(_REMOTE_KEY + _domain_of(address), resolution)
        return resolution

    def _forget_probe(self, domain: str, probe: asyncio.Task[Resolution]) -> None:
        if self._probes.get(domain) is probe:
            del self._probes[domain]
        if not probe.cancelled():
            probe.exception()  # seen by the waiters, if any: no "never retrieved" warning

    # Authentication.
    async def authenticate(self, username: str, password: str) -> Principal | None:
        """Check credentials (argon2id, off the loop); None for unknown user or wrong password.

        An unknown user costs one verification too, so timing does not reveal it.
        """
        try:
            address = normalize_address(username)
        except AddressError:
            address = ""
        row = principal = None
        if address:
            # One read for the hash and the principal (returned only if the password is right).
            async with self.db.read() as conn:
                row = await _accounts.account_row(conn, address)
                if row is not None:
                    principal = await _accounts.load_principal(conn, row.id, row.address)
        ok, rehash = await self.passwords.verify(
            None if row is None else row.password_hash, password
        )
        if not ok or row is None:
            return None
        if rehash:
            new_hash = await self.passwords.hash(password)
            async with self.db.write() as conn:
                await conn.execute(
                    update(accounts).where(accounts.c.id == row.id).values(password_hash=new_hash)
                )
        return principal

    async def principal(self, address: str) -> Principal:
        """The principal of an account. Raises NotFound."""
        normal = normalize_address(address)
        async with self.db.read() as conn:
            row = await _accounts.account_row(conn, normal)
            if row is None:
                raise NotFound(f"account {normal} does not exist")
            return await _accounts.load_principal(conn, row.id, row.address)

    # Delivery and the change feed.
    async def deliver(
        self,
        conn: AsyncConnection,
        *,
        account_ids: Iterable[int],
        blob_key: str,
        size: int,
        trace_header: bytes,
        internal_date: datetime,
    ) -> list[int]:
        """Add a copy to each account's INBOX inside the caller's write transaction.

        The caller commits, then calls :meth:`notify`. Returns the new message ids.
        """
        return await _messages.deliver(
            conn,
            account_ids=account_ids,
            blob_key=blob_key,
            size=size,
            trace_header=trace_header,
            internal_date=internal_date,
        )

    def notify(self, account_ids: Iterable[int]) -> None:
        """Wake in-process waiters of these accounts (after the commit)."""
        self.feed.notify(account_ids)

    async def wait_for_change(
        self,
        account_id: int,
        after_change_id: int,
        timeout: float,  # noqa: ASYNC109 - the port's contract
    ) -> int:
        """Wait (up to ``timeout`` s) for a change newer than ``after_change_id``."""
        return await self.feed.wait_for_change(account_id, after_change_id, timeout)

    async def latest_change_id(self, account_id: int) -> int:
        """The account's newest change id (0 when none)."""
        return await self.feed.latest_change_id(account_id)

    # POP3.
    async def open_maildrop(self, principal: Principal) -> SqlMaildrop:
        """Lease and snapshot the INBOX. Raises MaildropInUse."""
        return await open_maildrop(
            self.db, self.blobs, self.feed, principal, clock=self._clock, lease=self._lease
        )


# Route-cache key of "this domain is not local" (no address starts with a space).
_REMOTE_KEY = " remote@"


def _domain_of(address: str) -> str:
    return address.rpartition("@")[2].lower()
