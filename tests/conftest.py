"""Shared fixtures: fresh migrated databases (SQLite and PostgreSQL), blob store, mail store.

``db_url`` is parametrised over ``sqlite`` and ``pg``. The ``pg`` variants need
``COURRIEL_TEST_POSTGRES_URL`` (e.g. ``postgresql://postgres@127.0.0.1:5432/test``); without
it they skip, except under ``CI=true`` where a missing server is a failure.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import trustme
from argon2 import PasswordHasher

from courriel.mailstore.service import MailStore
from courriel.storage.blobs import BlobStore, FsBlobStore
from courriel.storage.db import Database
from courriel.testing.databases import PostgresTemplate, SqliteTemplate
from courriel.testing.tls import client_context, make_ca, server_context

POSTGRES_ENV = "COURRIEL_TEST_POSTGRES_URL"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> SqliteTemplate:
    """A migrated SQLite file, made once per session."""
    return SqliteTemplate(tmp_path_factory.mktemp("sqlite-template"))


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[PostgresTemplate]:
    """A migrated PostgreSQL run template, made once per session and dropped at the end."""
    url = os.environ.get(POSTGRES_ENV, "")
    if not url:
        reason = f"{POSTGRES_ENV} is not set"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason} (required when CI=true)")
        pytest.skip(reason)
    template = PostgresTemplate(url)
    yield template
    template.destroy()


@pytest.fixture(params=["sqlite", "postgresql"], ids=["sqlite", "pg"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a freshly migrated, empty database (one per test)."""
    if request.param == "sqlite":
        template: SqliteTemplate = request.getfixturevalue("sqlite_template")
        yield template.new_database(tmp_path)
        return
    pg: PostgresTemplate = request.getfixturevalue("postgres_template")
    url, name = pg.new_database()
    yield url
    pg.drop(name)


@pytest.fixture
async def database(db_url: str) -> AsyncIterator[Database]:
    """The opened database of ``db_url``."""
    db = await Database.open(db_url)
    yield db
    await db.close()


@pytest.fixture
def blobs(tmp_path: Path) -> BlobStore:
    """A filesystem blob store in the test's temporary folder."""
    return FsBlobStore(tmp_path / "blobs")


@pytest.fixture
def password_hasher() -> PasswordHasher:
    """A cheap argon2id hasher, so that tests stay fast."""
    return PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


@pytest.fixture
async def mailstore(
    database: Database, blobs: BlobStore, password_hasher: PasswordHasher
) -> MailStore:
    """A MailStore on the test database and blob store."""
    return MailStore(database, blobs, hasher=password_hasher)


# TLS fixtures shared by the SMTP and POP3 tests.


@pytest.fixture(scope="session")
def tls_ca() -> trustme.CA:
    """A throwaway certificate authority, one per test session."""
    return make_ca()


@pytest.fixture(scope="session")
def server_tls(tls_ca: trustme.CA) -> ssl.SSLContext:
    """A server TLS context with a certificate for 127.0.0.1 and localhost."""
    return server_context(tls_ca)


@pytest.fixture(scope="session")
def client_tls(tls_ca: trustme.CA) -> ssl.SSLContext:
    """A client TLS context that trusts ``tls_ca`` only."""
    return client_context(tls_ca)
