"""A throwaway certificate authority and TLS contexts for tests.

Everything here is made in memory by trustme for one test run: a CA, a server
certificate for ``127.0.0.1`` and ``localhost`` only, and a client context that
trusts that CA and nothing else. Only tests import this module (trustme is a test
dependency).
"""

from __future__ import annotations

import ssl

import trustme

__all__ = ["client_context", "make_ca", "server_context"]


def make_ca() -> trustme.CA:
    """Return a new in-memory certificate authority."""
    return trustme.CA()


def server_context(ca: trustme.CA) -> ssl.SSLContext:
    """Return a server context with a certificate from ``ca`` for 127.0.0.1 and localhost.

    Args:
        ca: the authority that issues the certificate.
    """
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(ctx)
    return ctx


def client_context(ca: trustme.CA) -> ssl.SSLContext:
    """Return a client context (hostname checked) that trusts only ``ca``.

    Args:
        ca: the authority whose certificates the client accepts.
    """
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    return ctx
