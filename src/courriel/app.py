"""Composition root: builds the services from the configuration and runs the roles.

``open_services`` is what every admin command uses: it creates and migrates the data
folder as needed and yields the database, blob store and mail store. ``Node`` runs the
listeners of ``courriel serve`` on one event loop and stops them cleanly: listeners stop
accepting first, transactions in flight finish (or get 421), and the database is closed
last, so nothing that was acknowledged is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import ssl
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from sqlalchemy.engine import Connection

from courriel.campaigning import LINKS_KEY_NAME, CampaignRoles
from courriel.config import LoadedConfig, ensure_data_dir, load_config, parse_listen
from courriel.delivery.committer import GroupCommitter
from courriel.delivery.router import Router
from courriel.delivery.signing import SignerCache
from courriel.delivery.targets import ListenerKind
from courriel.errors import CourrielError, ListenerError
from courriel.mailstore.prune import prune_changes
from courriel.mailstore.service import MailStore
from courriel.marketing.links import LinkSigner
from courriel.marketing.ports import Mailer
from courriel.outbound import Originator, Outbound
from courriel.protocols.imap.cache import MessageCache
from courriel.protocols.imap.server import ImapServer
from courriel.protocols.imap.session import ImapSettings
from courriel.protocols.pop3.server import Pop3Server
from courriel.protocols.pop3.session import Pop3Settings
from courriel.protocols.sasl import AuthThrottle
from courriel.protocols.smtp.server import SmtpServer
from courriel.protocols.smtp.session import SmtpSettings
from courriel.protocols.tls import ensure_certificate, server_context
from courriel.storage.blobs import BlobStore, open_blob_store
from courriel.storage.db import Database, sqlite_url_for
from courriel.storage.secrets import shared_secret

__all__ = [
    "ROLES",
    "HttpFactory",
    "Listener",
    "Node",
    "OriginatingMailer",
    "Services",
    "open_services",
]

log = logging.getLogger(__name__)

MAINTENANCE_INTERVAL = 3600.0  # seconds between two rounds of upkeep

# Roles `courriel serve --roles` knows, and the listener keys each one opens.
ROLES: dict[str, tuple[str, ...]] = {
    "smtp": ("smtp", "submission", "submissions"),
    "imap": ("imap", "imaps"),
    "pop3": ("pop3", "pop3s"),
    "http": ("http",),  # REST API, webhooks, tracker, /u/ pages
    "delivery": (),  # the outbound queue worker: no listener
}
# Ports used by `--high-ports` for a non-root quick start (the list).
HIGH_PORTS: dict[str, int] = {
    "smtp": 2525,
    "submission": 2587,
    "submissions": 2465,
    "pop3": 2110,
    "pop3s": 2995,
    "imap": 2143,
    "imaps": 2993,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Services:
    """The open services of one data folder."""

    loaded: LoadedConfig
    db: Database
    blobs: BlobStore
    mailstore: MailStore


def high_port_overrides(loaded: LoadedConfig) -> dict[str, str]:
    """Move listeners still on their default standard port to the 2xxx ports."""
    overrides: dict[str, str] = {}
    for key, port in HIGH_PORTS.items():
        name = f"listen.{key}"
        value = getattr(loaded.config.listen, key)
        if loaded.sources.get(name) != "default" or not value:
            continue
        addr = parse_listen(value)
        if addr is not None:
            host = f"[{addr.host}]" if ":" in addr.host else addr.host
            overrides[name] = f"{host}:{port}"
    return overrides


@asynccontextmanager
async def open_services(
    data_dir: Path,
    overrides: Mapping[str, str],
    environ: Mapping[str, str] | None = None,
    *,
    loaded: LoadedConfig | None = None,
) -> AsyncIterator[Services]:
    """Open (creating and migrating as needed) the data folder's services.

    Raises:
        ConfigError: the configuration has problems (all of them listed).
        StorageError: the database cannot be opened or migrated.
    """
    ensure_data_dir(data_dir)
    if loaded is None:
        loaded = load_config(data_dir, overrides, environ)
    url = loaded.config.database.url or sqlite_url_for(loaded.data_dir)
    db = await Database.open(url)
    try:
        await db.upgrade()
        blobs = open_blob_store(loaded.config.database.blob_store, loaded.data_dir, db)
        yield Services(loaded=loaded, db=db, blobs=blobs, mailstore=MailStore(db, blobs))
    finally:
        await db.close()


class _Server(Protocol):
    async def start(self, host: str, port: int) -> tuple[str, int]: ...

    async def stop(self, grace: float) -> None: ...


HttpFactory = Callable[["Services", Mailer, LinkSigner], _Server]
"""Builds the HTTP listener from the services, the mailer and the link signer."""


class OriginatingMailer:
    """:class:`courriel.marketing.ports.Mailer` over the originating path (router → queue).

    Mail the marketing engine writes (a double opt-in confirmation) goes through the same
    router as submitted mail: stored when the recipient is local, queued otherwise, and
    DKIM-signed when its ``From:`` domain has keys. Transactional mail is queued in the
    ``transactional`` class, campaigns in ``bulk``.
    """

    def __init__(self, originator: Originator) -> None:
        self._originator = originator

    async def send(
        self,
        *,
        sender: str,
        recipient: str,
        message: bytes,
        transactional: bool = True,
        on_commit: Callable[[Connection], None] | None = None,
        signed: bool = False,
    ) -> bool:
        """Queue ``message`` for ``recipient`` (see the port)."""
        priority = "transactional" if transactional else "bulk"
        accepted = await self._originator.send(
            sender, [recipient], message, priority=priority, on_commit=on_commit, signed=signed
        )
        return accepted > 0


@dataclass(slots=True, kw_only=True)
class Listener:
    """One bound listener: its config key, its address, and the server behind it."""

    key: str  # "listen.smtp"
    name: str  # "SMTP (MX)"
    host: str
    port: int
    server: _Server


@dataclass(slots=True)
class Node:
    """The roles of ``courriel serve`` running on one event loop."""

    services: Services
    roles: Sequence[str] = ("smtp", "imap", "pop3", "http", "delivery")
    listeners: list[Listener] = field(default_factory=list)
    throttle: AuthThrottle = field(default_factory=AuthThrottle)
    committer: GroupCommitter | None = None
    signers: SignerCache | None = None
    outbound: Outbound | None = None
    imap_cache: MessageCache | None = None  # parsed messages, shared by the IMAP listeners
    # Builds the HTTP listener; given by the layer above (cli, testing), since ``web`` sits
    # above ``app`` and cannot be imported from here.
    http_factory: HttpFactory | None = None
    links: LinkSigner | None = None  # made at start from the fleet's shared secret
    maintenance: asyncio.Task[None] | None = None  # periodic upkeep (change-feed pruning)
    # The campaign sender and the feedback processor run in the "delivery" role, beside the
    # queue worker they feed and hear from; made at start (they need the fleet's VERP key).
    campaigns: CampaignRoles | None = None

    async def start(self) -> None:
        """Create the TLS certificate if needed and bind every listener of the roles.

        Raises:
            ListenerError: a listener cannot bind; names the key to change. Listeners
                already started are stopped first.
        """
        cfg = self.services.loaded.config
        cert, key = ensure_certificate(
            self.services.loaded.data_dir, cfg.server.hostname, cfg.tls.cert, cfg.tls.key
        )
        tls = server_context(cert, key)
        if "http" in self.roles:
            self.links = LinkSigner(await shared_secret(self.services.db, LINKS_KEY_NAME))
        try:
            # Before the router exists: it checks VERP addresses with the fleet's key.
            self.campaigns = CampaignRoles(self.services.db, self.services.blobs)
            await self.campaigns.open()
            if "delivery" in self.roles:
                self._start_outbound()
                await self.campaigns.start(
                    cfg, OriginatingMailer(Originator(self._router(), cfg.server.hostname))
                )
            for role in self.roles:
                for key_name in ROLES[role]:
                    await self._start_listener(key_name, tls)
            self.maintenance = asyncio.create_task(self._maintain(), name="courriel-maintenance")
        except BaseException:
            await self.stop(grace=0)
            raise

    async def _start_listener(self, key_name: str, tls: ssl.SSLContext) -> None:
        value = getattr(self.services.loaded.config.listen, key_name)
        addr = parse_listen(value)
        if addr is None:
            return
        server, name = self._make_server(key_name, tls)
        try:
            host, port = await server.start(addr.host, addr.port)
        except OSError as exc:
            raise ListenerError(_bind_message(f"listen.{key_name}", value, exc)) from exc
        self.listeners.append(
            Listener(key=f"listen.{key_name}", name=name, host=host, port=port, server=server)
        )

    def _make_server(self, key_name: str, tls: ssl.SSLContext) -> tuple[_Server, str]:
        cfg = self.services.loaded.config
        store = self.services.mailstore
        if key_name in ("imap", "imaps"):
            return self._make_imap_server(key_name, tls)
        if key_name == "http":
            if self.http_factory is None or self.links is None:
                raise ListenerError("the http role needs the web application (courriel serve)")
            mailer = OriginatingMailer(Originator(self._router(), cfg.server.hostname))
            return self.http_factory(self.services, mailer, self.links), "HTTP"
        if key_name in ("pop3", "pop3s"):
            implicit = key_name == "pop3s"
            pop_settings = Pop3Settings(
                hostname=cfg.server.hostname,
                tls_available=True,
                tls_active=implicit,
                idle_timeout=_seconds(cfg.pop3.idle_timeout),
            )
            pop = Pop3Server(pop_settings, store, store, self.throttle, tls, implicit_tls=implicit)
            return pop, "POP3S" if implicit else "POP3"
        implicit = key_name == "submissions"
        kind: ListenerKind = "mx" if key_name == "smtp" else "submission"
        smtp_settings = SmtpSettings(
            hostname=cfg.server.hostname,
            listener=kind,
            max_message_size=cfg.server.max_message_size,
            max_recipients=cfg.server.max_recipients,
            tls_available=True,
            tls_active=implicit,
            banner=cfg.smtp.banner,
            command_timeout=_seconds(cfg.smtp.command_timeout),
            data_timeout=_seconds(cfg.smtp.data_timeout),
            max_connections=cfg.smtp.max_connections,
        )
        authenticator = store if kind == "submission" else None
        smtp = SmtpServer(
            smtp_settings, self._router(), authenticator, self.throttle, tls, implicit_tls=implicit
        )
        names = {"smtp": "SMTP (MX)", "submission": "Submission", "submissions": "Submissions"}
        return smtp, names[key_name]

    def _make_imap_server(self, key_name: str, tls: ssl.SSLContext) -> tuple[_Server, str]:
        cfg = self.services.loaded.config
        store = self.services.mailstore
        implicit = key_name == "imaps"
        if self.imap_cache is None:
            self.imap_cache = MessageCache(cfg.imap.cache_size)
        settings = ImapSettings(
            hostname=cfg.server.hostname,
            tls_available=True,
            tls_active=implicit,
            idle_timeout=_seconds(cfg.imap.idle_timeout),
            idle_keepalive=_seconds(cfg.imap.idle_keepalive),
            max_connections=cfg.imap.max_connections,
            max_line=cfg.imap.max_line,
            append_limit=cfg.server.max_message_size,
        )
        server = ImapServer(
            settings,
            store,
            store.imap,
            self.throttle,
            tls,
            implicit_tls=implicit,
            cache=self.imap_cache,
        )
        return server, "IMAPS" if implicit else "IMAP"

    def _start_outbound(self) -> None:
        assert self.campaigns is not None  # made first by start()
        self.outbound = Outbound(
            self.services.loaded.config,
            self.services.db,
            self.services.blobs,
            self._router(),
            on_delivered=self.campaigns.on_delivered(),
        )
        self.outbound.start()

    def _queued(self) -> None:
        if self.outbound is not None:
            self.outbound.wake()

    def _router(self) -> Router:
        # One router and one group committer for every SMTP listener of the node.
        assert self.campaigns is not None  # made first by start()
        if self.committer is None:
            self.committer = GroupCommitter(
                self.services.db,
                self.services.mailstore,
                on_queued=self._queued,
                on_feedback=self.campaigns.wake_feedback,
                on_local_delivered=self.campaigns.on_local_delivered(),
            )
        if self.signers is None:
            self.signers = SignerCache(self.services.db)
        return Router(
            self.services.mailstore,
            self.services.blobs,
            self.committer,
            self.signers,
            is_feedback_address=self.campaigns.is_feedback_address(),
        )

    async def _maintain(self) -> None:
        """Prune the change feed past ``imap.changes_retention``, now and then hourly.

        Safe on every node of a fleet at once; a failed round is logged and retried in an
        hour (pruning is an optimisation: nothing depends on it happening on time).
        """
        retention = self.services.loaded.config.imap.changes_retention
        while True:
            try:
                pruned = await prune_changes(self.services.db, older_than=retention)
                if pruned:
                    log.info("pruned %d change-feed rows older than %s", pruned, retention)
            except CourrielError:
                log.exception("change-feed pruning failed; next try in an hour")
            await asyncio.sleep(MAINTENANCE_INTERVAL)

    async def stop(self, grace: float = 10.0) -> None:
        """Stop every listener; transactions in flight get ``grace`` seconds to finish."""
        # The listeners leave the node before anything here awaits: once stop() has begun,
        # the node lists none (the maintenance task is cancelled beside them).
        listeners, self.listeners = self.listeners, []
        maintenance, self.maintenance = self.maintenance, None
        if maintenance is not None:
            maintenance.cancel()
        await asyncio.gather(*(lst.server.stop(grace) for lst in listeners))
        if maintenance is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await maintenance
        if self.campaigns is not None:
            # Stops between two copies: each copy's send record commits with it or not.
            await self.campaigns.stop()
        if self.outbound is not None:
            await self.outbound.stop(grace)
            self.outbound = None
        if self.committer is not None:
            await self.committer.close()


def _seconds(value: object) -> float:
    total = getattr(value, "total_seconds", None)
    return float(total()) if callable(total) else float(value)  # type: ignore[arg-type]


def _bind_message(key: str, value: str, exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        why = "the address is already in use"
    elif exc.errno == errno.EACCES:
        why = "permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)"
    elif exc.errno == errno.EADDRNOTAVAIL:
        why = "the address is not available on this machine"
    else:
        why = exc.strerror or str(exc)
    return (
        f"cannot listen on {value} ({key}): {why}. "
        f"Change {key} (e.g. --set {key}=127.0.0.1:PORT, or an empty value to disable it), "
        "or use 'courriel serve --high-ports'."
    )
