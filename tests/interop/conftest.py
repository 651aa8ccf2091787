"""Real peers from Debian's packages: a private dnsmasq and a private Postfix on loopback.

dnsmasq (127.0.0.1, a free port) serves ``interop.test``: MX ``mx.interop.test`` → A
127.0.0.5, nothing forwarded. Postfix listens on 127.0.0.5:<free port> with STARTTLS (a
throwaway certificate) and delivers ``interop.test`` mailboxes into Maildirs. A courriel
node (roles smtp, pop3, delivery) uses that dnsmasq and that port as its MX port.

Missing peers skip the tests locally; under ``CI=true`` they fail (the project's rule).
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
import trustme

from courriel.delivery.dkimkeys import ensure_keys
from courriel.testing.dnsmasq import Dnsmasq, dnsmasq_path
from courriel.testing.node import RunningNode, running_node
from courriel.testing.postfix import PostfixMx, postfix_available

PASSWORD = "interop-Pa55word"
MX_HOST = "127.0.0.5"
DOMAIN = "interop.test"
# Local part -> Maildir folder. virtual(8) keys are full addresses, UTF-8 included.
MAILBOXES = {"buyer": "buyer", "second": "second", "josé": "jose"}


def need(reason: str) -> None:
    """Skip for a missing peer, or fail under CI where every peer must be there."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (required when CI=true)")
    pytest.skip(reason)


def _free_tcp_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def postfix() -> Iterator[PostfixMx]:
    """One private Postfix for the module (each test uses its own Message-IDs)."""
    reason = postfix_available()
    if reason:
        need(reason)
    # Not under pytest's tmp folder: that one is closed to others (0700), and Postfix's
    # unprivileged processes must reach the instance by absolute path.
    root = Path(tempfile.mkdtemp(prefix="courriel-interop-postfix-"))
    root.chmod(0o755)
    try:
        certificate = trustme.CA().issue_cert(f"mx.{DOMAIN}")
        chain, key = root / "tls-chain.pem", root / "tls-key.pem"
        certificate.cert_chain_pems[0].write_to_path(str(chain))
        certificate.private_key_pem.write_to_path(str(key))
        key.chmod(0o600)
        instance = PostfixMx(
            root / "postfix",
            host=MX_HOST,
            port=_free_tcp_port(MX_HOST),
            domain=DOMAIN,
            mailboxes=MAILBOXES,
            tls_files=(chain, key),
        )
        with instance:
            yield instance
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
async def dnsmasq() -> AsyncIterator[int]:
    """A private dnsmasq for ``interop.test``; yields its port on 127.0.0.1."""
    if not dnsmasq_path():
        need("dnsmasq is not installed")
    records = [f"--mx-host={DOMAIN},mx.{DOMAIN},10", f"--host-record=mx.{DOMAIN},{MX_HOST}"]
    async with Dnsmasq(records) as port:
        yield port


@dataclass(frozen=True, slots=True, kw_only=True)
class Interop:
    """What a test needs: the node (alice@shop.test can submit) and the Postfix MX."""

    node: RunningNode
    postfix: PostfixMx


@pytest.fixture
async def interop(
    tmp_path: Path, db_url: str, postfix: PostfixMx, dnsmasq: int
) -> AsyncIterator[Interop]:
    extra = {
        "dns.nameservers": f"127.0.0.1:{dnsmasq}",
        "dns.timeout": "2s",
        "delivery.mx_port": str(postfix.port),
        "delivery.retry_schedule": "1s",
    }
    roles = ("smtp", "pop3", "delivery")
    async with running_node(tmp_path / "data", db_url, extra=extra, roles=roles) as node:
        store = node.services.mailstore
        await store.add_domain("shop.test")
        await store.add_account("alice@shop.test", PASSWORD)
        await ensure_keys(node.services.db, "shop.test", today=date(2026, 11, 27))
        yield Interop(node=node, postfix=postfix)
