"""A listener that cannot bind names the key to change and says why, in words."""

from __future__ import annotations

import errno

from courriel.app import _bind_message


def test_a_privileged_port_explains_the_fix() -> None:
    text = _bind_message("listen.smtp", "0.0.0.0:25", OSError(errno.EACCES, "denied"))
    assert "listen.smtp" in text
    assert "permission denied" in text
    assert "--high-ports" in text


def test_a_taken_port_and_a_foreign_address() -> None:
    taken = _bind_message("listen.pop3", "127.0.0.1:110", OSError(errno.EADDRINUSE, "x"))
    assert "already in use" in taken
    foreign = _bind_message("listen.imap", "192.0.2.1:143", OSError(errno.EADDRNOTAVAIL, "x"))
    assert "not available on this machine" in foreign
