"""The one exception tree of courriel.

Every error that crosses a module boundary is a subclass of :class:`CourrielError`.
A protocol reply is built from the error's public fields only; the internal cause
stays in logs (never hostnames, paths or configuration in a reply)::

    CourrielError
    ├── ConfigError                 bad configuration; carries every problem found
    ├── StorageError                the database or the blob store failed
    │   └── BlobMissing             a blob key has no stored body
    ├── NotFound                    an admin operation names something that does not exist
    ├── AlreadyExists               an admin operation would create a duplicate
    ├── InvalidInput                a value given by an operator or a client is malformed
    │   ├── AddressError            an email address or domain does not parse
    │   └── ForgottenAddress        the address asked to be forgotten (GDPR): never re-added
    ├── AuthError                   credentials were refused
    ├── DnsError                    a DNS lookup failed (temporary or permanent)
    ├── ProtocolError               a protocol-level failure with a wire reply
    │   ├── SyntaxProblem           a parser could not read a command (only this leaves a parser)
    │   └── DeliveryRefused         a delivery port refused a sender, recipient or message
    └── ListenerError               a listener could not bind; names the config key to change

"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "AddressError",
    "AlreadyExists",
    "AuthError",
    "BlobMissing",
    "ConfigError",
    "ConfigProblem",
    "CourrielError",
    "DeliveryRefused",
    "DnsError",
    "ForgottenAddress",
    "InvalidInput",
    "ListenerError",
    "NotFound",
    "ProtocolError",
    "StorageError",
    "SyntaxProblem",
]


class CourrielError(Exception):
    """Root of every error courriel raises on purpose."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfigProblem:
    """One problem in the configuration.

    ``source`` names where the value came from: a file path, ``env COURRIEL_X__Y``,
    ``--flag`` or ``default``.
    """

    source: str
    key: str
    value: str
    message: str

    def __str__(self) -> str:
        return f"{self.source}: {self.key} = {self.value!r}: {self.message}"


class ConfigError(CourrielError):
    """The configuration has one or more problems; all of them are listed."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class StorageError(CourrielError):
    """The database or the blob store failed."""


class BlobMissing(StorageError):
    """No body is stored under the given key."""


class NotFound(CourrielError):
    """An operation names a domain, account, alias or message that does not exist."""


class AlreadyExists(CourrielError):
    """An operation would create something that exists already."""


class InvalidInput(CourrielError):
    """A value given by an operator or a client is malformed.

    Attributes:
        field: the offending field as a JSON-pointer-like path (``"email"``,
            ``"conditions/0/days"``, ``"line 12: phone"``), or None when not about one field;
            the web edge names it in the RFC 9457 problem document.
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class AddressError(InvalidInput):
    """An email address or a domain name does not parse."""


class ForgottenAddress(InvalidInput):
    """The address was erased on request (GDPR) and must not be added again.

    An InvalidInput on ``email`` to every caller; the public tracker catches it by type
    to answer as if it had succeeded (a storefront must not learn who asked).
    """


class AuthError(CourrielError):
    """Credentials were refused (unknown user or wrong password: never said which)."""


class DnsError(CourrielError):
    """A DNS lookup failed.

    Attributes:
        temporary: True for SERVFAIL, timeouts and unreachable servers (retry later);
            False for answers that will not change soon (NXDOMAIN, a null MX).
    """

    def __init__(self, message: str, *, temporary: bool) -> None:
        self.temporary = temporary
        super().__init__(message)


class ProtocolError(CourrielError):
    """A failure that maps to a wire reply.

    Attributes:
        code: the basic reply code (SMTP ``550``) or 0 where the protocol has none.
        enhanced: the RFC 3463 enhanced status code (``5.7.1``), or ``""``.
        public: the generic text sent to the peer.
        temporary: True when the peer may retry (4xx).
        internal: the cause, for logs only.
    """

    def __init__(
        self,
        code: int,
        enhanced: str,
        public: str,
        *,
        internal: str = "",
        temporary: bool | None = None,
    ) -> None:
        self.code = code
        self.enhanced = enhanced
        self.public = public
        self.internal = internal or public
        self.temporary = (400 <= code < 500) if temporary is None else temporary
        super().__init__(f"{code} {enhanced} {public} ({self.internal})")


class SyntaxProblem(ProtocolError):
    """A parser could not read a command; the only exception a parser may raise."""

    def __init__(self, public: str, *, code: int = 500, enhanced: str = "5.5.2") -> None:
        super().__init__(code, enhanced, public, internal=public)


class DeliveryRefused(ProtocolError):
    """A delivery target refused a sender, a recipient or the message."""


class ListenerError(CourrielError):
    """A listener could not start; the message names the config key to change."""
