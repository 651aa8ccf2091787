"""Signed tokens for links put in mail (double opt-in confirmation, unsubscribe, …).

Owns the token format: ``<body>.<mac>``, both unpadded base64url (RFC 4648 §5, the URL-
and filename-safe alphabet; padding dropped as §3.2 allows), where ``body`` is the compact
JSON ``{"p": payload, "t": issued-at (Unix seconds)}`` and ``mac`` is
HMAC-SHA256(key, purpose ‖ 0x00 ‖ body) (RFC 2104 HMAC over SHA-256). The purpose is
inside the MAC, so a token made for one purpose never verifies for another.

Invariants:
- Verification compares MACs with :func:`hmac.compare_digest` and parses nothing before
  the MAC matched; any failure (tampering, wrong purpose, expiry, garbage) is one
  :class:`courriel.errors.InvalidInput` with field "token", never another exception.
- Tokens are URL-safe (``A-Z a-z 0-9 - _ .``) and need no escaping in a path segment.
- The key is shared by every node (``storage.secrets.shared_secret(db, "links")``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from courriel.errors import InvalidInput

__all__ = ["LinkSigner"]

MIN_KEY = 16
MAX_TOKEN = 4096


def _b64encode(data: bytes) -> str:
    # RFC 4648 §5: base64url; §3.2: the "=" padding may be left out when the length is known.
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    padded = text + "=" * (-len(text) % 4)
    return base64.urlsafe_b64decode(padded.encode("ascii"))


def _utcnow() -> datetime:
    return datetime.now(UTC)


class LinkSigner:
    """Signs and verifies purpose-bound, expiring tokens with one secret key."""

    def __init__(self, key: bytes, *, clock: Callable[[], datetime] = _utcnow) -> None:
        """Args:
        key: at least 16 random octets.
        clock: the current time (timezone-aware); injected so tests control expiry.

        Raises:
            ValueError: the key is too short (a programming error, not user input).
        """
        if len(key) < MIN_KEY:
            raise ValueError(f"a link key has at least {MIN_KEY} octets")
        self._key = key
        self._clock = clock

    def _mac(self, purpose: str, body: str) -> bytes:
        # RFC 2104 §2: HMAC with SHA-256 as H (B = 64, L = 32 octets).
        message = purpose.encode("utf-8") + b"\x00" + body.encode("ascii")
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def sign(self, purpose: str, payload: Mapping[str, Any]) -> str:
        """A token carrying ``payload`` (JSON-serialisable) for ``purpose``, issued now."""
        issued = int(self._clock().timestamp())
        document = {"p": dict(payload), "t": issued}
        body = _b64encode(json.dumps(document, separators=(",", ":"), sort_keys=True).encode())
        return f"{body}.{_b64encode(self._mac(purpose, body))}"

    def verify(self, purpose: str, token: str, *, max_age: timedelta) -> dict[str, Any]:
        """The payload of a token made for ``purpose`` at most ``max_age`` ago.

        Raises:
            InvalidInput: (field "token") the token is malformed, was altered, was made
                for another purpose or with another key, or has expired.
        """
        body, mac = self._split(token)
        if not hmac.compare_digest(mac, self._mac(purpose, body)):
            raise InvalidInput("the link is not valid", field="token")
        try:
            document = json.loads(_b64decode(body))
            payload, issued = document["p"], document["t"]
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidInput("the link is not valid", field="token") from exc
        if not isinstance(payload, dict) or not isinstance(issued, int):
            raise InvalidInput("the link is not valid", field="token")
        age = self._clock().timestamp() - issued
        if age > max_age.total_seconds():
            raise InvalidInput("the link has expired", field="token")
        return payload

    @staticmethod
    def _split(token: str) -> tuple[str, bytes]:
        if not isinstance(token, str) or len(token) > MAX_TOKEN or not token.isascii():
            raise InvalidInput("the link is not valid", field="token")
        body, sep, mac_text = token.partition(".")
        if not sep or not body or not mac_text:
            raise InvalidInput("the link is not valid", field="token")
        try:
            mac = _b64decode(mac_text)
        except (binascii.Error, ValueError) as exc:
            raise InvalidInput("the link is not valid", field="token") from exc
        # Only the canonical spelling of the MAC: one token, one string.
        if len(mac) != hashlib.sha256().digest_size or _b64encode(mac) != mac_text:
            raise InvalidInput("the link is not valid", field="token")
        return body, mac
