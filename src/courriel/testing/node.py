"""Run a whole courriel node in-process for tests, every listener on 127.0.0.1:0.

Shipped with the package so that projects embedding courriel can test against it too.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from courriel.app import Node, Services, open_services
from courriel.web.listener import http_listener

__all__ = ["LISTEN_KEYS", "RunningNode", "loopback_overrides", "running_node"]

LISTEN_KEYS = ("smtp", "submission", "submissions", "pop3", "pop3s", "imap", "imaps", "http")
TEST_HOSTNAME = "mail.courriel.test"


def loopback_overrides(database_url: str = "", hostname: str = TEST_HOSTNAME) -> dict[str, str]:
    """Config overrides that bind every listener to 127.0.0.1 on a free port."""
    overrides = {f"listen.{key}": "127.0.0.1:0" for key in LISTEN_KEYS}
    overrides["server.hostname"] = hostname
    # Tests never use the system resolver: a lookup a test did not arrange for goes to a
    # loopback port where nothing answers (tests that deliver start their own DnsServer).
    overrides["dns.nameservers"] = "127.0.0.1:9"
    overrides["dns.timeout"] = "1s"
    if database_url:
        overrides["database.url"] = database_url
    return overrides


@dataclass(frozen=True, slots=True, kw_only=True)
class RunningNode:
    """A started node: its services and the bound port of each listener key."""

    node: Node
    services: Services
    ports: Mapping[str, int]  # "smtp" -> 40123
    hostname: str
    cafile: Path  # the self-signed certificate clients should trust

    def client_tls(self, *, check_hostname: bool = False) -> ssl.SSLContext:
        """An SSL context that trusts this node's certificate.

        Tests connect to 127.0.0.1 while the certificate names ``hostname``, so the
        name check is off unless asked for (the chain is always verified).
        """
        context = ssl.create_default_context(cafile=str(self.cafile))
        context.check_hostname = check_hostname
        return context


@asynccontextmanager
async def running_node(
    data_dir: Path,
    database_url: str = "",
    extra: Mapping[str, str] | None = None,
    roles: tuple[str, ...] = ("smtp", "pop3"),
) -> AsyncIterator[RunningNode]:
    """Open the data folder, start the roles on loopback, stop them on exit."""
    overrides = {**loopback_overrides(database_url), **(extra or {})}
    async with open_services(data_dir, overrides, environ={}) as services:
        node = Node(services, roles=roles, http_factory=http_listener)
        await node.start()
        try:
            ports = {lst.key.removeprefix("listen."): lst.port for lst in node.listeners}
            yield RunningNode(
                node=node,
                services=services,
                ports=ports,
                hostname=services.loaded.config.server.hostname,
                cafile=services.loaded.data_dir / "tls" / "cert.pem",
            )
        finally:
            await node.stop(grace=5.0)
