"""The POP3 server over real sockets on 127.0.0.1, driven by the stdlib ``poplib``.

``poplib`` blocks, so each client runs in a thread while the server runs on the loop.
"""

from __future__ import annotations

import asyncio
import errno
import poplib
import socket
import ssl

import pytest

from courriel.protocols.pop3.server import Pop3Server
from courriel.protocols.pop3.session import Pop3Settings
from courriel.protocols.sasl import AuthThrottle
from courriel.testing.pop3 import MemoryMaildrops

from .conftest import ALICE, MSG1, MSG2, PASSWORD, ServerFactory


def _lines(message: bytes) -> list[bytes]:
    return message.removesuffix(b"\r\n").split(b"\r\n")


def _login_stls(port: int, tls: ssl.SSLContext) -> poplib.POP3:
    pop = poplib.POP3("127.0.0.1", port, timeout=10)
    pop.stls(tls)
    pop.user(ALICE)
    pop.pass_(PASSWORD)
    return pop


async def _unlocked(store: MemoryMaildrops) -> None:
    # A safety net against a hang, not a timing assertion.
    async with asyncio.timeout(10):
        await store.wait_unlocked(ALICE)


async def test_stls_then_a_whole_session(
    start_server: ServerFactory, client_tls: ssl.SSLContext, store: MemoryMaildrops
) -> None:
    server = await start_server()

    def session() -> dict[str, object]:
        pop = poplib.POP3("127.0.0.1", server.port, timeout=10)
        before = pop.capa()
        pop.stls(client_tls)
        after = pop.capa()
        pop.user(ALICE)
        pop.pass_(PASSWORD)
        out = {
            "before": before,
            "after": after,
            "stat": pop.stat(),
            "list": pop.list()[1],
            "uidl": pop.uidl()[1],
            "uidl1": pop.uidl(1),
            "retr": pop.retr(1)[1],
            "top": pop.top(2, 1)[1],
            "dele": pop.dele(1),
        }
        out["quit"] = pop.quit()
        return out

    out = await asyncio.to_thread(session)
    assert "STLS" in out["before"] and "USER" not in out["before"]  # type: ignore[operator]
    assert "SASL" not in out["before"]  # type: ignore[operator]
    assert out["after"]["SASL"] == ["PLAIN"]  # type: ignore[index]
    assert "USER" in out["after"] and "STLS" not in out["after"]  # type: ignore[operator]
    assert out["stat"] == (2, len(MSG1) + len(MSG2))
    assert out["list"] == [b"1 %d" % len(MSG1), b"2 %d" % len(MSG2)]
    assert out["uidl"] == [b"1 1.1", b"2 1.2"]
    assert out["uidl1"] == b"+OK 1 1.1"
    # poplib undoes the dot-stuffing, so the lines come back as stored.
    assert out["retr"] == _lines(MSG1)
    assert out["top"] == [b"From: dave@example.test", b"Subject: two", b"", b"line1"]
    assert out["dele"] == b"+OK message 1 deleted"
    assert out["quit"] == b"+OK Logging out, 1 messages left."
    await _unlocked(store)
    assert store.stored(ALICE) == [MSG2]


async def test_login_before_tls_is_refused(start_server: ServerFactory) -> None:
    server = await start_server()

    def attempt() -> str:
        pop = poplib.POP3("127.0.0.1", server.port, timeout=10)
        try:
            with pytest.raises(poplib.error_proto) as info:
                pop.user(ALICE)
            return str(info.value)
        finally:
            pop.quit()

    assert "[AUTH] Plaintext authentication disallowed" in await asyncio.to_thread(attempt)


async def test_pop3_ssl_implicit_tls(
    start_server: ServerFactory, client_tls: ssl.SSLContext
) -> None:
    server = await start_server(implicit_tls=True)

    def session() -> tuple[int, int]:
        pop = poplib.POP3_SSL("127.0.0.1", server.port, timeout=10, context=client_tls)
        try:
            assert "STLS" not in pop.capa()
            pop.user(ALICE)
            pop.pass_(PASSWORD)
            return pop.stat()
        finally:
            pop.quit()

    assert await asyncio.to_thread(session) == (2, len(MSG1) + len(MSG2))


async def test_wrong_password_is_refused(
    start_server: ServerFactory, client_tls: ssl.SSLContext
) -> None:
    server = await start_server()

    def attempt() -> str:
        pop = poplib.POP3("127.0.0.1", server.port, timeout=10)
        pop.stls(client_tls)
        pop.user(ALICE)
        try:
            with pytest.raises(poplib.error_proto) as info:
                pop.pass_("wrong")
            return str(info.value)
        finally:
            pop.quit()

    assert "[AUTH] Authentication failed" in await asyncio.to_thread(attempt)


async def test_uidls_equal_across_sessions(
    start_server: ServerFactory, client_tls: ssl.SSLContext, store: MemoryMaildrops
) -> None:
    server = await start_server()

    def uidls() -> list[bytes]:
        pop = _login_stls(server.port, client_tls)
        try:
            return pop.uidl()[1]
        finally:
            pop.quit()

    first = await asyncio.to_thread(uidls)
    await _unlocked(store)
    second = await asyncio.to_thread(uidls)
    assert first == second == [b"1 1.1", b"2 1.2"]


async def test_deletions_apply_only_after_quit(
    start_server: ServerFactory, client_tls: ssl.SSLContext, store: MemoryMaildrops
) -> None:
    server = await start_server()

    def dele_then_drop() -> None:
        pop = _login_stls(server.port, client_tls)
        pop.dele(1)
        pop.close()  # no QUIT: RFC 1939 §6, nothing may be deleted

    def count_then_dele_quit() -> int:
        pop = _login_stls(server.port, client_tls)
        count = pop.stat()[0]
        pop.dele(1)
        pop.quit()
        return count

    def count() -> int:
        pop = _login_stls(server.port, client_tls)
        try:
            return pop.stat()[0]
        finally:
            pop.quit()

    await asyncio.to_thread(dele_then_drop)
    await _unlocked(store)
    assert await asyncio.to_thread(count_then_dele_quit) == 2
    await _unlocked(store)
    assert await asyncio.to_thread(count) == 1
    assert store.stored(ALICE) == [MSG2]


async def test_second_concurrent_login_gets_in_use(
    start_server: ServerFactory, client_tls: ssl.SSLContext
) -> None:
    server = await start_server()

    def two_sessions() -> str:
        first = _login_stls(server.port, client_tls)
        try:
            second = poplib.POP3("127.0.0.1", server.port, timeout=10)
            second.stls(client_tls)
            second.user(ALICE)
            try:
                with pytest.raises(poplib.error_proto) as info:
                    second.pass_(PASSWORD)
                return str(info.value)
            finally:
                second.quit()
        finally:
            first.quit()

    assert "[IN-USE]" in await asyncio.to_thread(two_sessions)


async def test_auth_plain_over_the_wire(
    start_server: ServerFactory, client_tls: ssl.SSLContext
) -> None:
    server = await start_server(implicit_tls=True)

    def session() -> tuple[bytes, bytes]:
        pop = poplib.POP3_SSL("127.0.0.1", server.port, timeout=10, context=client_tls)
        try:
            pop._putcmd("AUTH PLAIN")
            cont = pop._getline()[0]
            ok = pop._shortcmd("AGFsaWNlQGV4YW1wbGUudGVzdABjb3JyZWN0IGhvcnNlIGJhdHRlcnk=")
            return cont, ok
        finally:
            pop.quit()

    cont, ok = await asyncio.to_thread(session)
    assert cont == b"+ "
    assert ok.startswith(b"+OK Logged in")


async def test_large_message_streams_dot_stuffed_in_chunks(
    start_server: ServerFactory, client_tls: ssl.SSLContext, store: MemoryMaildrops
) -> None:
    body = b"".join(b".line %d with a leading dot\r\n" % i for i in range(20_000))
    big = b"Subject: big\r\n\r\n" + body
    store.deliver(ALICE, big)
    # A small chunk size puts many chunk boundaries right before a leading dot.
    server = await start_server(chunk_size=1000)

    def retr() -> tuple[bytes, list[bytes], int]:
        pop = _login_stls(server.port, client_tls)
        try:
            resp, lines, octets = pop.retr(3)
            return resp, lines, octets
        finally:
            pop.quit()

    resp, lines, octets = await asyncio.to_thread(retr)
    assert resp == b"+OK %d octets" % len(big)
    assert lines == _lines(big)
    # poplib counts the octets after undoing the stuffing: the size as stored.
    assert octets == len(big)


async def test_idle_timeout_closes_with_err_and_releases(
    start_server: ServerFactory, client_tls: ssl.SSLContext, store: MemoryMaildrops
) -> None:
    server = await start_server(idle_timeout=0.2)

    def idle() -> bytes:
        pop = _login_stls(server.port, client_tls)
        pop.dele(1)
        try:
            return pop._getline()[0]
        finally:
            pop.close()

    assert await asyncio.to_thread(idle) == b"-ERR Disconnected for inactivity."
    await _unlocked(store)
    assert len(store.stored(ALICE)) == 2


async def test_stop_releases_locks_and_deletes_nothing(
    start_server: ServerFactory, client_tls: ssl.SSLContext, store: MemoryMaildrops
) -> None:
    server = await start_server()
    logged_in = asyncio.Event()
    loop = asyncio.get_running_loop()

    def client() -> bytes:
        pop = _login_stls(server.port, client_tls)
        pop.dele(1)
        loop.call_soon_threadsafe(logged_in.set)
        try:
            return pop.sock.recv(100)  # blocks until the server closes the connection
        finally:
            pop.close()

    reader = asyncio.create_task(asyncio.to_thread(client))
    await logged_in.wait()
    assert store.is_locked(ALICE)
    # An idle session is cut at once; the grace is for commands in progress only.
    await server.stop(grace=30)
    assert await reader == b""
    assert not store.is_locked(ALICE)
    assert len(store.stored(ALICE)) == 2
    assert server.connections == 0


async def test_connection_limit(start_server: ServerFactory, client_tls: ssl.SSLContext) -> None:
    server = await start_server(max_connections=1)

    def over_limit() -> bytes:
        first = poplib.POP3("127.0.0.1", server.port, timeout=10)
        try:
            # poplib.POP3() would raise on this greeting and leak its socket: read it raw.
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
            with sock, sock.makefile("rb") as lines:
                return lines.readline()
        finally:
            first.quit()

    greeting = await asyncio.to_thread(over_limit)
    assert greeting.startswith(b"-ERR [SYS/TEMP]")


async def test_bind_error_propagates(start_server: ServerFactory, store: MemoryMaildrops) -> None:
    server = await start_server()
    other = Pop3Server(Pop3Settings(), store, store, AuthThrottle(), None)
    with pytest.raises(OSError) as info:
        await other.start("127.0.0.1", server.port)
    assert info.value.errno == errno.EADDRINUSE
