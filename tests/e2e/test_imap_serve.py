"""``courriel serve`` runs IMAP: STARTTLS and IMAPS listeners, and SMTP mail wakes IDLE.

The IDLE client is a raw TLS socket (imaplib has no IDLE before Python 3.14); the message
comes in through the SMTP listener of the same process, so the whole inbound path is
crossed: SMTP session → group commit → mail store → change feed → IMAP IDLE.
"""

from __future__ import annotations

import imaplib
import smtplib
import socket
import ssl
import time
from pathlib import Path

from courriel.testing.subprocess_node import ServeProcess

from .conftest import PASSWORD


def _tls(data_dir: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(data_dir / "tls" / "cert.pem"))
    ctx.check_hostname = False
    return ctx


class _Lines:
    """Reads CRLF-terminated lines from a socket."""

    def __init__(self, sock: ssl.SSLSocket) -> None:
        self.sock = sock
        self.buffer = b""

    def line(self) -> bytes:
        while b"\r\n" not in self.buffer:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("closed")
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\r\n")
        return line

    def until_tagged(self, tag: bytes) -> list[bytes]:
        lines = []
        while True:
            line = self.line()
            lines.append(line)
            if line.startswith(tag + b" "):
                return lines


def test_serve_offers_imap_and_smtp_mail_wakes_idle(data_dir: Path, db_url: str) -> None:
    server = ServeProcess(data_dir, db_url)
    server.start()
    try:
        assert {"imap", "imaps"} <= set(server.ports)
        # Port 143 speaks STARTTLS and refuses LOGIN before it (LOGINDISABLED).
        plain = imaplib.IMAP4("127.0.0.1", server.ports["imap"], timeout=10)
        assert "LOGINDISABLED" in plain.capabilities
        plain.starttls(ssl_context=_tls(data_dir))
        assert plain.login("alice@shop.test", PASSWORD)[0] == "OK"
        plain.logout()

        raw = socket.create_connection(("127.0.0.1", server.ports["imaps"]), timeout=20)
        with _tls(data_dir).wrap_socket(raw) as sock:
            reader = _Lines(sock)
            assert reader.line().startswith(b"* OK")
            sock.sendall(b"a LOGIN alice@shop.test " + PASSWORD.encode() + b"\r\n")
            assert reader.until_tagged(b"a")[-1].startswith(b"a OK")
            sock.sendall(b"b SELECT INBOX\r\n")
            assert b"* 0 EXISTS" in reader.until_tagged(b"b")
            sock.sendall(b"c IDLE\r\n")
            assert reader.line().startswith(b"+ ")
            sent = time.monotonic()
            with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=10) as smtp:
                smtp.sendmail(
                    "c@example.test", ["alice@shop.test"], b"Subject: idle\r\n\r\nwake up\r\n"
                )
            while (line := reader.line()) != b"* 1 EXISTS":
                assert line.startswith(b"* "), line
            woke = time.monotonic() - sent
            sock.sendall(b"DONE\r\n")
            assert reader.until_tagged(b"c")[-1].startswith(b"c OK")
            sock.sendall(b"d FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])\r\n")
            fetched = b"\r\n".join(reader.until_tagged(b"d"))
            assert b"Subject: idle" in fetched
            sock.sendall(b"e LOGOUT\r\n")
            reader.until_tagged(b"e")
        # Reported, not asserted: latency belongs to bench/imap.py, not to tests.
        print(f"IDLE woke {woke * 1000:.0f} ms after the SMTP transaction began")
    finally:
        assert server.terminate() == 0, "".join(server.output)
