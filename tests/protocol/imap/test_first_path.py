"""The first end-to-end path: imaplib over STARTTLS: LOGIN, SELECT, FETCH FLAGS, LOGOUT."""

from __future__ import annotations

import asyncio
import imaplib
import ssl

from .conftest import ALICE, PASSWORD, ServerFactory


async def test_login_select_fetch_logout(
    start_server: ServerFactory, client_tls: ssl.SSLContext
) -> None:
    server = await start_server()

    def client() -> dict[str, object]:
        imap = imaplib.IMAP4("127.0.0.1", server.port, timeout=10)
        caps_before = imap.capabilities
        imap.starttls(client_tls)
        login = imap.login(ALICE, PASSWORD)
        select = imap.select("INBOX")
        fetch = imap.fetch("1:*", "(FLAGS)")
        logout = imap.logout()
        return {
            "before": caps_before,
            "login": login,
            "select": select,
            "fetch": fetch,
            "logout": logout,
        }

    out = await asyncio.to_thread(client)
    assert "LOGINDISABLED" in out["before"]  # type: ignore[operator]
    assert "STARTTLS" in out["before"]  # type: ignore[operator]
    login = out["login"]
    assert isinstance(login, tuple)
    status, [text] = login
    assert status == "OK"
    assert text.startswith(b"[CAPABILITY IMAP4rev1 IMAP4rev2 ") and text.endswith(b"] Logged in")
    assert b" AUTH=PLAIN" not in text and b" CONDSTORE " in text
    assert out["select"] == ("OK", [b"2"])
    assert out["fetch"] == ("OK", [b"1 (FLAGS (\\Recent))", b"2 (FLAGS (\\Recent))"])
    assert out["logout"][0] == "BYE"  # type: ignore[index]
