"""A domain's DKIM signer: every active key of one domain, parsed once (RFC 6376, RFC 8463).

Owns signing one message with each key of its domain, RSA first. It holds private keys
and reads no storage: :mod:`courriel.delivery.dkimkeys` builds it from the database, and a
campaign's render processes build it from the PEM text they are handed (keys of
``cryptography`` cannot be pickled, so a process parses its own copy once).

Invariant: all signatures of one message share one relaxed/relaxed SHA-256 body hash.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from courriel.mail import dkim

__all__ = ["DkimSigner", "SigningKey"]


@dataclass(frozen=True, slots=True)
class SigningKey:
    """One private key of a domain, with its selector."""

    selector: str
    algorithm: dkim.Algorithm
    key: dkim.PrivateKey

    @classmethod
    def from_pem(cls, selector: str, pem: str) -> SigningKey:
        """Parse a stored PEM key (RSA checks take tens of milliseconds: not on a loop).

        Raises:
            InvalidInput: the PEM does not hold a supported private key.
        """
        key = dkim.key_from_pem(pem)
        return cls(selector, dkim.algorithm_of(key), key)


class DkimSigner:
    """Signs messages of one domain with each of its active keys (parsed once).

    Immutable and safe to cache and to share between tasks or threads (``cryptography``
    keys are thread-safe).
    """

    __slots__ = ("_keys", "domain")

    def __init__(self, domain: str, keys: Sequence[SigningKey]) -> None:
        self.domain = domain
        # RSA first: a verifier that only looks at the first signature (and some still
        # do not know Ed25519) then meets the one it can check.
        self._keys = tuple(sorted(keys, key=lambda k: (k.algorithm != "rsa-sha256", k.selector)))

    @property
    def selectors(self) -> tuple[str, ...]:
        """The selectors it signs with, in the order of the fields it returns."""
        return tuple(k.selector for k in self._keys)

    def signatures(self, header_section: bytes, body_hash: bytes, timestamp: int) -> bytes:
        """The ``DKIM-Signature`` fields to put on top of the message, RSA first.

        Args:
            header_section: the message's header section (see ``dkim.split_header_section``).
            body_hash: ``dkim.BodyHasher`` digest of the body (one serves every key:
                all signatures are relaxed/relaxed with SHA-256).
            timestamp: the ``t=`` value, seconds since the epoch.
        """
        return b"".join(
            dkim.sign(
                header_section=header_section,
                body_hash=body_hash,
                domain=self.domain,
                selector=k.selector,
                key=k.key,
                algorithm=k.algorithm,
                timestamp=timestamp,
            )
            for k in self._keys
        )

    def sign_message(self, message: bytes, timestamp: int) -> bytes:
        """``message`` (CRLF line ends) with this domain's signatures on top."""
        header, body = dkim.split_message(message)
        hasher = dkim.BodyHasher()
        hasher.update(body)
        return self.signatures(header, hasher.digest(), timestamp) + message
