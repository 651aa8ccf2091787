"""SASL mechanisms shared by SMTP AUTH, POP3 AUTH and (later) IMAP AUTHENTICATE.

Sans-I/O: these functions decode client responses; the sessions own the exchange.
The throttle makes repeated failures from one peer slower (growing delay) without
ever sleeping itself: the server applies the delay it returns.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from courriel.errors import SyntaxProblem

__all__ = ["AuthThrottle", "Credentials", "b64decode_response", "decode_plain", "redact_auth"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Credentials:
    """A username and password taken from a SASL exchange."""

    authzid: str
    username: str
    password: str


def b64decode_response(data: str) -> bytes:
    """Decode a base64 SASL response (RFC 4954 §4), ``=`` meaning empty.

    Raises:
        SyntaxProblem: 501 5.5.2 when the text is not valid base64.
    """
    data = data.strip()
    if data == "=":
        return b""
    try:
        return base64.b64decode(data.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
        raise SyntaxProblem("Invalid base64 data", code=501, enhanced="5.5.2") from exc


def decode_plain(raw: bytes) -> Credentials:
    """Split a PLAIN message (RFC 4616 §2: ``[authzid] NUL authcid NUL passwd``).

    Raises:
        SyntaxProblem: 501 5.5.2 when the message does not have that shape.
    """
    parts = raw.split(b"\x00")
    if len(parts) != 3 or not parts[1]:
        raise SyntaxProblem("Malformed PLAIN credentials", code=501, enhanced="5.5.2")
    try:
        authzid, user, password = (p.decode("utf-8") for p in parts)
    except UnicodeDecodeError as exc:
        raise SyntaxProblem("Credentials are not UTF-8", code=501, enhanced="5.5.2") from exc
    return Credentials(authzid=authzid, username=user, password=password)


def redact_auth(line: str) -> str:
    """Return a protocol line safe for traces: AUTH payloads are never logged."""
    upper = line.upper()
    for verb in ("AUTH ", "AUTHENTICATE ", "PASS ", "LOGIN "):
        idx = upper.find(verb)
        if idx != -1:
            head = line[: idx + len(verb)]
            rest = line[idx + len(verb) :].split(" ", 1)
            mechanism = rest[0] if verb in ("AUTH ", "AUTHENTICATE ") else ""
            return f"{head}{mechanism} [redacted]".rstrip()
    return line


@dataclass(slots=True)
class AuthThrottle:
    """Grows the delay after each failed login from the same peer.

    The delay doubles per failure (``base`` seconds first) up to ``ceiling``, and a
    peer's count is forgotten ``window`` seconds after its last failure. A success
    resets it. ``clock`` is injectable for tests.
    """

    base: float = 0.5
    ceiling: float = 15.0
    window: float = 900.0
    clock: Callable[[], float] = time.monotonic
    _failures: dict[str, tuple[int, float]] = field(default_factory=dict)

    def failed(self, peer: str) -> float:
        """Record a failure; return how many seconds to wait before replying."""
        now = self.clock()
        count, last = self._failures.get(peer, (0, now))
        if now - last > self.window:
            count = 0
        count += 1
        self._failures[peer] = (count, now)
        if len(self._failures) > 10_000:
            self._expire(now)
        return float(min(self.ceiling, self.base * (2 ** (count - 1))))

    def succeeded(self, peer: str) -> None:
        """Forget the peer's failures."""
        self._failures.pop(peer, None)

    def _expire(self, now: float) -> None:
        stale = [p for p, (_, last) in self._failures.items() if now - last > self.window]
        for peer in stale:
            del self._failures[peer]
