"""The IMAP server over real sockets on 127.0.0.1, driven by the stdlib ``imaplib``.

``imaplib`` blocks, so each client runs in a thread while the server runs on the loop.
The store is a real MailStore (SQLite and PostgreSQL).
"""

from __future__ import annotations

import asyncio
import base64
import imaplib
import socket
import ssl

from courriel.mailstore.service import MailStore

from .conftest import ALICE, MSG1, MSG2, PASSWORD, TRACE, ServerFactory, deliver, imaplib_login


async def test_imaps_authenticate_plain_and_mailbox_commands(
    start_server: ServerFactory, client_tls: ssl.SSLContext
) -> None:
    server = await start_server(implicit_tls=True)

    def client() -> dict[str, object]:
        imap = imaplib.IMAP4_SSL("127.0.0.1", server.port, ssl_context=client_tls, timeout=10)
        out: dict[str, object] = {"caps": imap.capabilities}
        out["auth"] = imap.authenticate("PLAIN", lambda _: f"\0{ALICE}\0{PASSWORD}".encode())
        out["enable"] = imap.enable("CONDSTORE")
        out["create"] = imap.create("Work/Reports")
        out["rename"] = imap.rename("Work/Reports", "Work/Archive")
        out["subscribe"] = imap.subscribe("Work/Archive")
        out["lsub"] = imap.lsub('""', "Work/*")
        out["list"] = imap.list('""', "Work*")
        out["status"] = imap.status("INBOX", "(MESSAGES UIDNEXT UNSEEN)")
        out["namespace"] = imap.namespace()
        out["unsubscribe"] = imap.unsubscribe("Work/Archive")
        out["delete"] = imap.delete("Work/Archive")
        out["missing"] = imap.select("Work/Archive")
        out["logout"] = imap.logout()[0]
        return out

    out = await asyncio.to_thread(client)
    assert "AUTH=PLAIN" in out["caps"]  # type: ignore[operator]
    assert "LOGINDISABLED" not in out["caps"]  # type: ignore[operator]
    assert out["auth"][0] == "OK"  # type: ignore[index]
    assert out["enable"] == ("OK", [b"Enabled"])
    for key in ("create", "rename", "subscribe", "unsubscribe", "delete"):
        assert out[key] == ("OK", [f"{key.title()} completed".encode()]), key
    assert out["lsub"] == ("OK", [b'() "/" Work/Archive'])
    assert out["list"] == (
        "OK",
        [b'(\\HasChildren) "/" Work', b'(\\HasNoChildren) "/" Work/Archive'],
    )
    assert out["status"] == ("OK", [b"INBOX (MESSAGES 2 UIDNEXT 3 UNSEEN 2)"])
    assert out["namespace"] == ("OK", [b'(("" "/")) NIL NIL'])
    assert out["missing"] == ("NO", [b"[NONEXISTENT] Mailbox doesn't exist"])
    assert out["logout"] == "BYE"


async def test_message_commands_over_starttls(
    start_server: ServerFactory, client_tls: ssl.SSLContext
) -> None:
    server = await start_server()

    def client() -> dict[str, object]:
        imap = imaplib_login(server.port, client_tls)
        out: dict[str, object] = {}
        out["append"] = imap.append("INBOX", "(\\Flagged)", None, b"Subject: three\r\n\r\nbody\r\n")
        out["examine"] = imap.select("INBOX", readonly=True)
        out["peek"] = imap.fetch("1", "(BODY.PEEK[] RFC822.SIZE)")
        out["select"] = imap.select("INBOX")
        out["fetch"] = imap.fetch("2", "(BODY[1])")
        out["search"] = imap.search(None, "UNSEEN")
        out["uidsearch"] = imap.uid("SEARCH", "FLAGGED")
        out["store"] = imap.store("1", "+FLAGS", "(\\Deleted)")
        out["copy"] = imap.copy("2", "Archive")
        out["move"] = imap.uid("MOVE", "3", "Trash")
        out["check"] = imap.check()
        out["noop"] = imap.noop()
        out["id"] = imap.xatom("ID", "NIL")
        # UID 2 is not \Deleted: UID EXPUNGE leaves it (RFC 4315 §2.1).
        out["uidexpunge"] = imap.uid("EXPUNGE", "2")
        out["expunge"] = imap.expunge()
        out["left"] = imap.fetch("1:*", "(UID)")
        out["close"] = imap.close()
        out["trash"] = imap.select("Trash")
        out["unselect"] = imap.unselect()
        imap.logout()
        return out

    out = await asyncio.to_thread(client)
    assert out["append"][0] == "OK"  # type: ignore[index]
    assert out["append"][1][0].startswith(b"[APPENDUID ")  # type: ignore[index]
    assert out["examine"] == ("OK", [b"3"])
    peek = out["peek"][1]  # type: ignore[index]
    assert peek[0] == (b"1 (BODY[] {%d}" % (len(TRACE) + len(MSG1)), TRACE + MSG1)
    assert peek[1] == b" RFC822.SIZE %d)" % (len(TRACE) + len(MSG1))
    fetch = out["fetch"][1]  # type: ignore[index]
    assert fetch[0] == (b"2 (FLAGS (\\Seen \\Recent) BODY[1] {10}", b"first part")
    assert out["search"] == ("OK", [b"1 3"])
    assert out["uidsearch"] == ("OK", [b"3"])
    assert out["store"] == ("OK", [b"1 (FLAGS (\\Deleted \\Recent))"])
    assert out["copy"][0] == "OK"  # type: ignore[index]
    assert out["copy"][1][0].startswith(b"[COPYUID ")  # type: ignore[index]
    assert out["move"][0] == "OK"  # type: ignore[index]
    assert out["check"] == ("OK", [b"Check completed"])
    assert out["noop"] == ("OK", [b"NOOP completed"])
    assert out["id"][0] == "OK"  # type: ignore[index]
    assert out["uidexpunge"][0] == "OK"  # type: ignore[index]
    # imaplib keeps MOVE's "* 3 EXPUNGE" with the EXPUNGE responses.
    assert out["expunge"] == ("OK", [b"3", b"1"])
    assert out["left"] == ("OK", [b"1 (UID 2)"])
    assert out["close"] == ("OK", [b"Close completed"])
    assert out["trash"][1][-1] == b"1"  # type: ignore[index]
    assert out["unselect"] == ("OK", [b"Unselect completed"])


def _raw(port: int, tls: ssl.SSLContext) -> tuple[ssl.SSLSocket, socket.SocketIO]:
    sock = tls.wrap_socket(
        socket.create_connection(("127.0.0.1", port), timeout=10), server_hostname="127.0.0.1"
    )
    return sock, sock.makefile("rb")  # type: ignore[return-value]


def _until(reader: socket.SocketIO, prefix: bytes) -> list[bytes]:
    lines = []
    while True:
        line = reader.readline()
        assert line, "connection closed"
        lines.append(line)
        if line.startswith(prefix):
            return lines


async def test_rfc2177_idle_sees_delivered_mail(
    start_server: ServerFactory, client_tls: ssl.SSLContext, mail: MailStore
) -> None:
    server = await start_server(implicit_tls=True)
    idling = asyncio.Event()
    loop = asyncio.get_running_loop()
    ir = base64.b64encode(f"\0{ALICE}\0{PASSWORD}".encode())

    def client() -> list[bytes]:
        sock, reader = _raw(server.port, client_tls)
        reader.readline()
        sock.sendall(b"a1 AUTHENTICATE PLAIN " + ir + b"\r\na2 SELECT INBOX\r\na3 IDLE\r\n")
        _until(reader, b"a2 OK")
        assert reader.readline() == b"+ idling\r\n"
        loop.call_soon_threadsafe(idling.set)
        seen = _until(reader, b"* 3 RECENT")
        sock.sendall(b"DONE\r\na4 LOGOUT\r\n")
        seen += _until(reader, b"a4 OK")
        sock.close()
        return seen

    task = asyncio.ensure_future(asyncio.to_thread(client))
    await idling.wait()
    await deliver(mail, ALICE, MSG2)
    async with asyncio.timeout(10):  # a safety net against a hang, not a timing assertion
        seen = await task
    assert seen[:2] == [b"* 3 EXISTS\r\n", b"* 3 RECENT\r\n"]
    assert seen[-3:] == [
        b"a3 OK Idle completed\r\n",
        b"* BYE Logging out\r\n",
        b"a4 OK Logout completed\r\n",
    ]


async def test_inactivity_timeout_says_bye(
    start_server: ServerFactory, client_tls: ssl.SSLContext
) -> None:
    server = await start_server(implicit_tls=True, idle_timeout=0.2)

    def client() -> list[bytes]:
        sock, reader = _raw(server.port, client_tls)
        lines = [reader.readline(), reader.readline(), reader.readline()]
        sock.close()
        return lines

    lines = await asyncio.to_thread(client)
    assert lines[0].startswith(b"* OK [CAPABILITY ")
    assert lines[1:] == [b"* BYE Disconnected for inactivity.\r\n", b""]


async def test_idle_keepalive_and_connection_limit(
    start_server: ServerFactory, client_tls: ssl.SSLContext
) -> None:
    server = await start_server(implicit_tls=True, idle_keepalive=0.05, max_connections=1)
    ir = base64.b64encode(f"\0{ALICE}\0{PASSWORD}".encode())

    def client() -> tuple[list[bytes], bytes]:
        sock, reader = _raw(server.port, client_tls)
        reader.readline()
        sock.sendall(b"a1 AUTHENTICATE PLAIN " + ir + b"\r\na2 IDLE\r\n")
        _until(reader, b"+ idling")
        lines = [reader.readline(), reader.readline()]
        second, second_reader = _raw(server.port, client_tls)
        refused = second_reader.readline()
        second.close()
        sock.sendall(b"DONE\r\n")
        lines += _until(reader, b"a2 OK")
        sock.close()
        return lines, refused

    lines, refused = await asyncio.to_thread(client)
    assert lines[:2] == [b"* OK Still here\r\n", b"* OK Still here\r\n"]
    assert lines[-1] == b"a2 OK Idle completed\r\n"
    assert refused == b"* BYE [UNAVAILABLE] Too many connections, try again later.\r\n"


async def test_stop_cuts_idle_sessions(
    start_server: ServerFactory, client_tls: ssl.SSLContext
) -> None:
    server = await start_server(implicit_tls=True)
    ready = asyncio.Event()
    loop = asyncio.get_running_loop()
    ir = base64.b64encode(f"\0{ALICE}\0{PASSWORD}".encode())

    def client() -> bytes:
        sock, reader = _raw(server.port, client_tls)
        reader.readline()
        sock.sendall(b"a1 AUTHENTICATE PLAIN " + ir + b"\r\na2 IDLE\r\n")
        _until(reader, b"+ idling")
        loop.call_soon_threadsafe(ready.set)
        rest = reader.read()
        sock.close()
        return rest

    task = asyncio.ensure_future(asyncio.to_thread(client))
    await ready.wait()
    await server.stop(grace=5)
    async with asyncio.timeout(10):
        assert await task == b""
    assert server.connections == 0
