"""Interop: real IMAP clients from Debian's packages against courriel (and Dovecot as the control).

* isync (``mbsync``) syncs a 1,000-message INBOX down to a local Maildir, then local flag
  changes (seen, flagged, deleted) and a server-side one (answered) are synced both ways and
  checked over imaplib.
* fetchmail fetches over IMAPS (``--sslcertck``) into an MDA command, keeping messages (then
  marked \\Seen) or deleting them (then expunged), and with ``--all``.
* curl lists mailboxes, fetches ``;UID=n`` and a section, searches, and sends a raw STORE.
* offlineimap3 syncs a mailbox down, then local flags and deletions up and a server-side
  flag down (it pins the server's certificate by fingerprint).

Each test runs against three targets: a private Dovecot (proving the test and the client set-up
on a reference server) and a courriel node (role ``imap``) on SQLite and on PostgreSQL. Every
client runs as a subprocess with a timeout, against 127.0.0.1 only, with its files in the
test's temporary folder.
"""

from __future__ import annotations

import asyncio
import hashlib
import imaplib
import os
import re
import shutil
import ssl
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import trustme

from courriel.testing.databases import PostgresTemplate, SqliteTemplate
from courriel.testing.dovecot import DovecotImap, dovecot_available
from courriel.testing.node import running_node

from .conftest import need

pytestmark = pytest.mark.interop

USER = "alice@shop.test"
PASSWORD = "clients-Pa55word"
DATE = datetime(2026, 2, 1, 10, 0, tzinfo=UTC)
CLIENT_TIMEOUT = 120.0
_MESSAGE_ID = re.compile(rb"^Message-ID: <m(\d+)\.", re.MULTILINE | re.IGNORECASE)


def message(number: int) -> bytes:
    """Fixture message ``number`` in wire form; its Message-ID names the number."""
    return (
        f"Date: Sun, 01 Feb 2026 10:00:00 +0000\r\n"
        f"From: Shop <news@shop.test>\r\n"
        f"To: {USER}\r\n"
        f"Subject: message {number}\r\n"
        f"Message-ID: <m{number}.clients@shop.test>\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n"
        "\r\n"
        f"Body of message {number}.\r\n"
    ).encode()


def number_of(data: bytes) -> int:
    """The fixture number in a message's Message-ID."""
    match = _MESSAGE_ID.search(data)
    assert match is not None, data[:200]
    return int(match.group(1))


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """An IMAPS server with USER's empty account, as the clients see it."""

    server: str
    port: int  # implicit TLS
    tls_name: str  # a name the server's certificate carries (resolved to 127.0.0.1)
    cafile: Path  # what clients trust: a CA, or the server's self-signed certificate
    certificate: Path  # the server's own certificate (PEM), for clients that pin it
    seed: Callable[[Sequence[bytes]], Awaitable[None]]  # into USER's INBOX

    def imap(self) -> imaplib.IMAP4_SSL:
        """A logged-in imaplib session (blocking: call it in a thread)."""
        context = ssl.create_default_context(cafile=str(self.cafile))
        context.check_hostname = False  # 127.0.0.1; the chain is still verified
        client = imaplib.IMAP4_SSL("127.0.0.1", self.port, ssl_context=context, timeout=30)
        client.login(USER, PASSWORD)
        return client


async def _dovecot_target(folder: Path) -> AsyncIterator[Target]:
    reason = dovecot_available()
    if reason:
        need(reason)
    ca = trustme.CA()
    # isync 1.4 wants a common name, and compares it with its Host (127.0.0.1).
    issued = ca.issue_cert("dovecot.test", "127.0.0.1", common_name="127.0.0.1")
    chain, key, cafile = folder / "chain.pem", folder / "key.pem", folder / "ca.pem"
    issued.cert_chain_pems[0].write_to_path(str(chain))
    issued.private_key_pem.write_to_path(str(key))
    ca.cert_pem.write_to_path(str(cafile))
    server = DovecotImap({USER: PASSWORD}, tls_files=(chain, key), mail_format="maildir")
    async with server:

        async def seed(messages: Sequence[bytes]) -> None:
            server.deliver_maildir(USER, messages, internal_date=DATE.timestamp())

        yield Target(
            server="dovecot",
            port=server.imaps_port,
            tls_name="dovecot.test",
            cafile=cafile,
            certificate=chain,
            seed=seed,
        )


async def _courriel_target(data_dir: Path, db_url: str) -> AsyncIterator[Target]:
    async with running_node(data_dir, db_url, roles=("imap",)) as node:
        store = node.services.mailstore
        await store.add_domain("shop.test")
        await store.add_account(USER, PASSWORD)
        principal = await store.principal(USER)

        async def seed(messages: Sequence[bytes]) -> None:
            refs = [await store.blobs.put(data) for data in messages]
            async with store.db.write() as conn:
                for ref in refs:
                    await store.deliver(
                        conn,
                        account_ids=[principal.account_id],
                        blob_key=ref.key,
                        size=ref.size,
                        trace_header=b"",
                        internal_date=DATE,
                    )
            store.notify([principal.account_id])

        yield Target(
            server="courriel",
            port=node.ports["imaps"],
            tls_name=node.hostname,
            cafile=node.cafile,
            certificate=node.cafile,
            seed=seed,
        )


@pytest.fixture(params=["dovecot", "courriel-sqlite", "courriel-pg"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """ "dovecot", or the URL of a fresh database for a courriel node (either engine).

    Synchronous: the database templates are made with their own event loop.
    """
    if request.param == "dovecot":
        yield "dovecot"
    elif request.param == "courriel-sqlite":
        sqlite: SqliteTemplate = request.getfixturevalue("sqlite_template")
        yield sqlite.new_database(tmp_path)
    else:
        pg: PostgresTemplate = request.getfixturevalue("postgres_template")
        url, name = pg.new_database()
        yield url
        pg.drop(name)


@pytest.fixture
async def target(server: str, tmp_path: Path) -> AsyncIterator[Target]:
    """The server under test, started, with USER's empty account."""
    targets = (
        _dovecot_target(tmp_path)
        if server == "dovecot"
        else _courriel_target(tmp_path / "data", server)
    )
    async for item in targets:
        yield item


async def run(argv: Sequence[str], *, env: dict[str, str] | None = None) -> str:
    """Run a client to completion (killed after CLIENT_TIMEOUT); its output, or a failure."""
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=env,
    )
    try:
        async with asyncio.timeout(CLIENT_TIMEOUT):
            output, _ = await process.communicate()
    except TimeoutError:
        process.kill()
        await process.wait()
        pytest.fail(f"{argv[0]} did not finish in {CLIENT_TIMEOUT} s")
    text = output.decode("utf-8", "replace")
    assert process.returncode == 0, f"{' '.join(argv)} exited {process.returncode}:\n{text}"
    return text


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        need(f"{name} is not installed")
    assert path is not None
    return path


def _server_state(target: Target) -> dict[int, set[str]]:
    """Fixture number -> flags of every message in INBOX, over imaplib."""
    client = target.imap()
    try:
        status, data = client.select("INBOX")
        assert status == "OK", data
        if int(data[0] or b"0") == 0:
            return {}
        status, items = client.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
        assert status == "OK", items
    finally:
        client.logout()
    state: dict[int, set[str]] = {}
    for item in items:
        if isinstance(item, tuple):
            flags = re.search(rb"FLAGS \(([^)]*)\)", item[0])
            assert flags is not None, item[0]
            names = {flag.decode() for flag in flags.group(1).split()}
            state[number_of(item[1])] = names - {"\\Recent"}
    return state


# --- isync (mbsync) ------------------------------------------------------------------------

MBSYNC_COUNT = 1000


def _mbsyncrc(target: Target, local: Path) -> str:
    # isync 1.4 names: Far/Near, SSLType; a certificate listed in CertificateFile is trusted
    # when the server presents exactly it (courriel's self-signed one) or one it issued.
    return f"""\
IMAPAccount far
Host 127.0.0.1
Port {target.port}
User {USER}
Pass {PASSWORD}
SSLType IMAPS
CertificateFile {target.cafile}
PipelineDepth 50
Timeout 60

IMAPStore far-store
Account far

MaildirStore near-store
Path {local}/
Inbox {local}/INBOX
SubFolders Verbatim

Channel sync
Far :far-store:
Near :near-store:
Patterns INBOX
Create Near
Expunge Both
SyncState *
Sync All
"""


def _local_messages(inbox: Path) -> dict[int, Path]:
    files = [*(inbox / "cur").iterdir(), *(inbox / "new").iterdir()]
    return {number_of(path.read_bytes()): path for path in files}


def _set_local_flags(path: Path, flags: str) -> None:
    # Maildir: the info part ":2,<flags sorted>" in cur/ (S seen, F flagged, R replied).
    base = path.name.split(":", 1)[0]
    old = path.name.split(":2,", 1)[1] if ":2," in path.name else ""
    path.rename(path.parent.parent / "cur" / f"{base}:2,{''.join(sorted(set(old + flags)))}")


async def test_mbsync_syncs_a_large_mailbox_both_ways(target: Target, tmp_path: Path) -> None:
    mbsync = _tool("mbsync")
    await target.seed([message(n) for n in range(MBSYNC_COUNT)])
    local = tmp_path / "maildir"
    local.mkdir()
    rc = tmp_path / "mbsyncrc"
    rc.write_text(_mbsyncrc(target, local), encoding="utf-8")
    argv = [mbsync, "-c", str(rc), "-a"]

    await run(argv)
    inbox = local / "INBOX"
    mirrored = _local_messages(inbox)
    assert sorted(mirrored) == list(range(MBSYNC_COUNT))
    # mbsync stores LF line ends and adds its X-TUID tracking header; the rest is intact.
    copy = re.sub(rb"^X-TUID: .*\n", b"", mirrored[7].read_bytes(), flags=re.MULTILINE)
    assert copy == message(7).replace(b"\r\n", b"\n")

    for n in range(100):
        _set_local_flags(mirrored[n], "S")
    for n in range(100, 150):
        _set_local_flags(mirrored[n], "F")
    for n in range(150, 170):
        mirrored[n].unlink()
    # A change made on the server since the last sync travels down.
    client = await asyncio.to_thread(target.imap)
    await asyncio.to_thread(client.select, "INBOX")
    await asyncio.to_thread(client.store, "201", "+FLAGS", "(\\Answered)")
    await asyncio.to_thread(client.logout)

    await run(argv)
    state = await asyncio.to_thread(_server_state, target)
    expected: dict[int, set[str]] = {n: set() for n in range(MBSYNC_COUNT) if not 150 <= n < 170}
    for n in range(100):
        expected[n] = {"\\Seen"}
    for n in range(100, 150):
        expected[n] = {"\\Flagged"}
    expected[200] = {"\\Answered"}  # sequence number 201 is fixture number 200
    assert state == expected
    after = _local_messages(inbox)
    assert sorted(after) == sorted(expected)
    assert after[200].name.endswith(":2,R")


# --- fetchmail -----------------------------------------------------------------------------


async def _fetchmail(target: Target, tmp_path: Path, *options: str) -> list[int]:
    """Run fetchmail once into a fresh MDA folder; the fixture numbers it delivered."""
    fetchmail = _tool("fetchmail")
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    rc = home / ".fetchmailrc"
    rc.write_text(f'poll 127.0.0.1 user "{USER}" password "{PASSWORD}"\n', encoding="utf-8")
    rc.chmod(0o600)  # fetchmail refuses a readable rcfile (it holds a password)
    out = Path(tempfile.mkdtemp(dir=tmp_path, prefix="mda-"))
    argv = [
        fetchmail, "--fetchmailrc", str(rc), "--idfile", str(home / ".fetchids"),
        "--nosyslog", "--nodetach", "--silent", "--protocol", "IMAP",
        "--service", str(target.port), "--ssl", "--sslcertck",
        "--sslcertfile", str(target.cafile), "--sslcommonname", target.tls_name,
        "--mda", f"sh -c 'cat > \"$(mktemp {out}/msg.XXXXXX)\"'",
        *options, "127.0.0.1",
    ]  # fmt: skip
    env = {"HOME": str(home), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    await run(argv, env=env)
    return sorted(number_of(path.read_bytes()) for path in out.iterdir())


async def test_fetchmail_over_imaps_keeps_or_deletes(target: Target, tmp_path: Path) -> None:
    await target.seed([message(n) for n in range(5)])

    # --keep: every message arrives and stays on the server, now \Seen.
    assert await _fetchmail(target, tmp_path, "--keep") == [0, 1, 2, 3, 4]
    state = await asyncio.to_thread(_server_state, target)
    assert state == {n: {"\\Seen"} for n in range(5)}

    # Without --keep only the new (unseen) messages come, and leave the server.
    await target.seed([message(n) for n in range(5, 8)])
    assert await _fetchmail(target, tmp_path) == [5, 6, 7]
    state = await asyncio.to_thread(_server_state, target)
    assert state == {n: {"\\Seen"} for n in range(5)}

    # --all fetches the seen ones too, and the mailbox ends empty.
    assert await _fetchmail(target, tmp_path, "--all") == [0, 1, 2, 3, 4]
    assert await asyncio.to_thread(_server_state, target) == {}


# --- curl ----------------------------------------------------------------------------------


async def _curl(target: Target, path: str, *options: str) -> str:
    curl = _tool("curl")
    url = f"imaps://{target.tls_name}:{target.port}/{path}"
    argv = [
        curl, "--silent", "--show-error", "--max-time", "60",
        "--cacert", str(target.cafile),
        "--resolve", f"{target.tls_name}:{target.port}:127.0.0.1",
        "--user", f"{USER}:{PASSWORD}", *options, url,
    ]  # fmt: skip
    return await run(argv)


async def test_curl_lists_fetches_searches_and_stores(target: Target) -> None:
    await target.seed([message(n) for n in range(3)])

    listing = (await _curl(target, "")).replace("\r\n", "\n")
    names = {line.rsplit(" ", 1)[-1] for line in listing.splitlines() if line.startswith("* LIST")}
    assert {"INBOX", "Sent", "Drafts", "Junk", "Trash", "Archive"} <= names
    assert re.search(r'^\* LIST \([^)]*\\Sent[^)]*\) "/" Sent$', listing, re.MULTILINE)

    fetched = await _curl(target, "INBOX;UID=2")
    assert fetched.replace("\r\n", "\n") == message(1).decode().replace("\r\n", "\n")

    section = await _curl(target, "INBOX;UID=3;SECTION=HEADER.FIELDS%20(SUBJECT)")
    assert section.strip() == "Subject: message 2"

    found = await _curl(target, "INBOX?SUBJECT%20%22message%201%22")
    assert found.split() == ["*", "SEARCH", "2"]

    # curl fetches with BODY[] (not PEEK): what it fetched is \Seen now (RFC 9051 §6.4.5).
    state = await asyncio.to_thread(_server_state, target)
    assert state == {0: set(), 1: {"\\Seen"}, 2: {"\\Seen"}}
    await _curl(target, "INBOX", "--request", "STORE 1 +FLAGS \\Seen")
    state = await asyncio.to_thread(_server_state, target)
    assert state == {0: {"\\Seen"}, 1: {"\\Seen"}, 2: {"\\Seen"}}


# --- offlineimap3 --------------------------------------------------------------------------

OFFLINEIMAP_COUNT = 50


def _offlineimaprc(target: Target, folder: Path) -> str:
    # Pinned by SHA-256 fingerprint: offlineimap's own name check wants the certificate's
    # common name to be the host it connects to, 127.0.0.1 here.
    der = ssl.PEM_cert_to_DER_cert(target.certificate.read_text(encoding="ascii"))
    fingerprint = hashlib.sha256(der).hexdigest()
    return f"""\
[general]
accounts = test
metadata = {folder}/metadata
ui = basic

[Account test]
localrepository = near
remoterepository = far

[Repository near]
type = Maildir
localfolders = {folder}/mail

[Repository far]
type = IMAP
remotehost = 127.0.0.1
remoteport = {target.port}
remoteuser = {USER}
remotepass = {PASSWORD}
ssl = yes
cert_fingerprint = {fingerprint}
folderfilter = lambda name: name == "INBOX"
createfolders = False
"""


async def test_offlineimap_syncs_both_ways(target: Target, tmp_path: Path) -> None:
    offlineimap = _tool("offlineimap")
    await target.seed([message(n) for n in range(OFFLINEIMAP_COUNT)])
    rc = tmp_path / "offlineimaprc"
    rc.write_text(_offlineimaprc(target, tmp_path), encoding="utf-8")
    argv = [offlineimap, "-c", str(rc), "-o", "-u", "basic"]
    env = {"HOME": str(tmp_path), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}

    await run(argv, env=env)
    inbox = tmp_path / "mail" / "INBOX"
    mirrored = _local_messages(inbox)
    assert sorted(mirrored) == list(range(OFFLINEIMAP_COUNT))

    for n in range(10):
        _set_local_flags(mirrored[n], "S")
    for n in range(10, 15):
        mirrored[n].unlink()
    client = await asyncio.to_thread(target.imap)
    await asyncio.to_thread(client.select, "INBOX")
    await asyncio.to_thread(client.store, "21", "+FLAGS", "(\\Flagged)")  # fixture 20
    await asyncio.to_thread(client.logout)

    await run(argv, env=env)
    state = await asyncio.to_thread(_server_state, target)
    expected: dict[int, set[str]] = {n: set() for n in range(OFFLINEIMAP_COUNT) if not 10 <= n < 15}
    for n in range(10):
        expected[n] = {"\\Seen"}
    expected[20] = {"\\Flagged"}
    assert state == expected
    after = _local_messages(inbox)
    assert sorted(after) == sorted(expected)
    assert after[20].name.endswith(":2,F")
