"""The server side of an SMTP AUTH exchange (RFC 4954), sans-I/O.

One :class:`SaslExchange` per AUTH command: ``start`` takes the optional initial
response (SASL-IR, RFC 4954 §4), ``step`` takes each following client line. Each
returns either a ``334`` challenge to send or the final :class:`Credentials`.
Checking the credentials is the session's job (through the Authenticator port).

Invariant: nothing here logs or echoes what the client sent.
"""

from __future__ import annotations

from courriel.errors import ProtocolError, SyntaxProblem
from courriel.protocols.sasl import Credentials, b64decode_response, decode_plain
from courriel.protocols.smtp.replies import Reply

__all__ = ["SaslExchange"]

# RFC 4954 §4 and the LOGIN draft: the challenges are "Username:" and "Password:".
_USERNAME = Reply.of(334, "", "VXNlcm5hbWU6")
_PASSWORD = Reply.of(334, "", "UGFzc3dvcmQ6")
_EMPTY = Reply.of(334, "", "")


def _text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SyntaxProblem("Credentials are not UTF-8", code=501, enhanced="5.5.2") from exc


class SaslExchange:
    """One PLAIN or LOGIN exchange."""

    def __init__(self, mechanism: str) -> None:
        """Begin an exchange for ``mechanism`` (``PLAIN`` or ``LOGIN``)."""
        self.mechanism = mechanism
        self._username: str | None = None

    def start(self, initial: str | None) -> Reply | Credentials:
        """Handle the AUTH command's optional initial response.

        Raises:
            ProtocolError: 501 5.0.0 when cancelled, 501 5.5.2 on malformed data.
        """
        if initial is None:
            return _EMPTY if self.mechanism == "PLAIN" else _USERNAME
        return self.step(initial)

    def step(self, response: str) -> Reply | Credentials:
        """Handle one client response line.

        Raises:
            ProtocolError: 501 5.0.0 when cancelled (``*``), 501 5.5.2 on malformed data.
        """
        if response.strip() == "*":
            # RFC 4954 §4: "*" cancels the exchange.
            raise ProtocolError(501, "5.0.0", "Authentication cancelled")
        raw = b64decode_response(response)
        if self.mechanism == "PLAIN":
            creds = decode_plain(raw)
            # RFC 4616 §2: we only allow acting as oneself.
            if creds.authzid and creds.authzid != creds.username:
                raise ProtocolError(535, "5.7.8", "Authentication credentials invalid")
            return creds
        if self._username is None:
            self._username = _text(raw)
            return _PASSWORD
        return Credentials(authzid="", username=self._username, password=_text(raw))
