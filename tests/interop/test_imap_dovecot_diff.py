"""Differential test: the same scripted IMAP sessions against Dovecot and against courriel.

Each ``imap_scripts/*.imap`` runs once against a private Dovecot (Debian's dovecot-imapd,
IMAPS on loopback, an account per script) and once against a courriel node (role ``imap``,
IMAPS, on both databases). Both accounts start empty and the script seeds them itself with
APPEND (fixed INTERNALDATE). The normalised transcripts (see ``imapdiff``: tags kept,
UIDVALIDITY named, free text masked, CAPABILITY and ID left out, data items and flag
lists sorted) must be equal line for line; a difference is shown as a unified diff.
"""

from __future__ import annotations

import difflib
import os
import shutil
import ssl
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import trustme

from courriel.testing.dovecot import DovecotImap, dovecot_available
from courriel.testing.node import RunningNode, running_node

from .conftest import need
from .imapdiff import SCRIPTS, load_script, run_script
from .imaprules import normalise

pytestmark = pytest.mark.interop

PASSWORD = "diff-Pa55word"
DOMAIN = "shop.test"
SCRIPT_PATHS = sorted(SCRIPTS.glob("*.imap"))


def _user(script: Path, run: int = 1) -> str:
    return f"{script.stem.replace('_', '-')}-{run}@{DOMAIN}"


@pytest.fixture(scope="module")
def dovecot_ca() -> trustme.CA:
    """The CA that issued Dovecot's certificate."""
    return trustme.CA()


@pytest.fixture(scope="module")
def dovecot(dovecot_ca: trustme.CA) -> Iterator[DovecotImap]:
    """One private Dovecot for the module, with one account per script."""
    reason = dovecot_available()
    if reason:
        need(reason)
    folder = Path(tempfile.mkdtemp(prefix="courriel-imapdiff-"))
    try:
        issued = dovecot_ca.issue_cert("127.0.0.1", "localhost")
        chain, key = folder / "chain.pem", folder / "key.pem"
        issued.cert_chain_pems[0].write_to_path(str(chain))
        issued.private_key_pem.write_to_path(str(key))
        users = {_user(path, run): PASSWORD for path in SCRIPT_PATHS for run in (1, 2)}
        with DovecotImap(users, tls_files=(chain, key)) as server:
            yield server
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
async def courriel(tmp_path: Path, db_url: str) -> AsyncIterator[RunningNode]:
    """A courriel node serving IMAP, with the script accounts' domain."""
    async with running_node(tmp_path / "data", db_url, roles=("imap",)) as node:
        await node.services.mailstore.add_domain(DOMAIN)
        yield node


def _client_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


def _diff(theirs: list[str], ours: list[str]) -> str:
    lines = difflib.unified_diff(theirs, ours, "dovecot", "courriel", lineterm="", n=2)
    return "\n".join(lines)


@pytest.fixture(scope="module")
def dovecot_runs() -> dict[tuple[str, int], list[str]]:
    """Dovecot's normalised transcripts, by (script, account run): each account runs once."""
    return {}


async def _dovecot_lines(
    script: Path,
    run: int,
    dovecot: DovecotImap,
    ca: trustme.CA,
    cache: dict[tuple[str, int], list[str]],
) -> list[str]:
    key = (script.name, run)
    if key not in cache:
        steps = load_script(script, user=_user(script, run), password=PASSWORD)
        cache[key] = normalise(await run_script(steps, dovecot.imaps_port, _client_context(ca)))
    return cache[key]


@pytest.mark.parametrize("script", SCRIPT_PATHS, ids=[p.stem for p in SCRIPT_PATHS])
async def test_normalised_dovecot_is_deterministic(
    script: Path,
    dovecot: DovecotImap,
    dovecot_ca: trustme.CA,
    dovecot_runs: dict[tuple[str, int], list[str]],
) -> None:
    """Two fresh accounts give the same normalised transcript: the rules mask every value
    the server chooses, and every command got its tagged reply."""
    first = await _dovecot_lines(script, 1, dovecot, dovecot_ca, dovecot_runs)
    second = await _dovecot_lines(script, 2, dovecot, dovecot_ca, dovecot_runs)
    assert first == second, _diff(first, second)
    commands = [line for line in first if line.startswith("C: ")]
    tags = [line.split()[1] for line in commands]
    tagged = {
        line.split()[1] for line in first if line.startswith("S: ") and not line.startswith("S: *")
    }
    assert set(tags) <= tagged, f"commands without a tagged reply: {set(tags) - tagged}"


@pytest.mark.parametrize("script", SCRIPT_PATHS, ids=[p.stem for p in SCRIPT_PATHS])
async def test_same_responses_as_dovecot(
    script: Path,
    dovecot: DovecotImap,
    dovecot_ca: trustme.CA,
    dovecot_runs: dict[tuple[str, int], list[str]],
    courriel: RunningNode,
) -> None:
    user = _user(script)
    theirs = await _dovecot_lines(script, 1, dovecot, dovecot_ca, dovecot_runs)
    await courriel.services.mailstore.add_account(user, PASSWORD)
    steps = load_script(script, user=user, password=PASSWORD)
    ours = normalise(await run_script(steps, courriel.ports["imaps"], courriel.client_tls()))
    if os.environ.get("COURRIEL_IMAPDIFF_SHOW"):
        print("\n".join(theirs))
    if ours != theirs:
        diff = _diff(theirs, ours)
        pytest.fail(f"{script.name}: courriel differs from Dovecot\n{diff}", pytrace=False)
