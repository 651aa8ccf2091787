"""UID commands, BINARY and CONDSTORE through the stdlib ``imaplib`` over real sockets.

The fixture INBOX holds MSG1 (UID 1) and MSG2 (UID 2, a multipart whose second part is
base64 ``AAEC``, the octets 00 01 02). Store: a real MailStore on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import re
import ssl

from .conftest import ServerFactory, imaplib_login


def _modseq(data: bytes) -> int:
    found = re.search(rb"MODSEQ \((\d+)\)", data)
    assert found, data
    return int(found.group(1))


async def test_uid_fetch_store_copy_and_binary(
    start_server: ServerFactory, client_tls: ssl.SSLContext
) -> None:
    server = await start_server()

    def client() -> dict[str, object]:
        imap = imaplib_login(server.port, client_tls)
        imap.select("INBOX")
        out: dict[str, object] = {}
        out["uid_fetch"] = imap.uid("FETCH", "2", "(FLAGS RFC822.SIZE)")
        out["uid_store"] = imap.uid("STORE", "2", "+FLAGS", "(\\Answered custom)")
        out["uid_copy"] = imap.uid("COPY", "1:2", "Archive")
        # imaplib files the tagged reply's response code under its name.
        out["copyuid"] = imap.response("COPYUID")
        out["binary"] = imap.fetch("2", "(BINARY.PEEK[2] BINARY.SIZE[2])")
        out["uid_missing"] = imap.uid("FETCH", "99", "(FLAGS)")
        imap.select("Archive")
        out["archive"] = imap.uid("FETCH", "1:*", "(FLAGS)")
        imap.logout()
        return out

    out = await asyncio.to_thread(client)
    fetched = out["uid_fetch"]
    assert fetched[0] == "OK"  # type: ignore[index]
    assert re.fullmatch(rb"2 \(UID 2 FLAGS \(.*\) RFC822\.SIZE \d+\)", fetched[1][0])  # type: ignore[index]
    stored = out["uid_store"]
    assert stored[0] == "OK"  # type: ignore[index]
    assert b"UID 2" in stored[1][0] and b"\\Answered" in stored[1][0]  # type: ignore[index]
    assert b"custom" in stored[1][0]  # type: ignore[index]
    assert out["uid_copy"][0] == "OK"  # type: ignore[index]
    copyuid = out["copyuid"][1][0]  # type: ignore[index]
    assert re.fullmatch(rb"\d+ 1:2 1:2", copyuid), copyuid
    binary = out["binary"]
    assert binary[0] == "OK"  # type: ignore[index]
    # RFC 3516: the base64 part comes back decoded, its size is the decoded size.
    assert binary[1][0][1] == b"\x00\x01\x02"  # type: ignore[index]
    assert b"BINARY.SIZE[2] 3" in binary[1][1]  # type: ignore[index]
    assert out["uid_missing"] == ("OK", [None])
    archive = out["archive"][1]  # type: ignore[index]
    assert len(archive) == 2
    assert b"\\Answered" in archive[1] and b"custom" in archive[1]  # flags travel with COPY


async def test_condstore_unchangedsince_and_changedsince(
    start_server: ServerFactory, client_tls: ssl.SSLContext
) -> None:
    server = await start_server()

    def client() -> dict[str, object]:
        imap = imaplib_login(server.port, client_tls)
        imap.enable("CONDSTORE")
        imap.select("INBOX")
        out: dict[str, object] = {}
        out["before"] = imap.fetch("1:2", "(MODSEQ)")
        # The highest modseq before the STORE: only what changes after it is "changed".
        first = max(_modseq(line) for line in out["before"][1])  # type: ignore[index]
        out["first"] = first
        out["store"] = imap.store("1", "+FLAGS.SILENT", "(\\Flagged)")
        # Message 1 changed after `first`: UNCHANGEDSINCE refuses it (RFC 7162 §3.1.3).
        out["conflict"] = imap.uid("STORE", "1", f"(UNCHANGEDSINCE {first}) +FLAGS", "(\\Seen)")
        out["modified"] = imap.response("MODIFIED")
        out["changed"] = imap.uid("FETCH", "1:*", f"(FLAGS) (CHANGEDSINCE {first})")
        imap.logout()
        return out

    out = await asyncio.to_thread(client)
    assert out["conflict"][0] == "OK"  # type: ignore[index]
    assert out["modified"][1] == [b"1"]  # type: ignore[index]
    changed = out["changed"]
    assert changed[0] == "OK"  # type: ignore[index]
    # Only message 1 changed since `first`; it has \Flagged but not \Seen.
    assert len(changed[1]) == 1  # type: ignore[arg-type]
    line = changed[1][0]  # type: ignore[index]
    assert b"UID 1" in line and b"\\Flagged" in line and b"\\Seen" not in line
    assert _modseq(line) > out["first"]  # type: ignore[operator]
