"""Password hashing with argon2id, run off the event loop.

Invariant: checking a password for an unknown user costs the same as for a known one
(a dummy hash made with the same parameters is verified), so timing does not tell
which usernames exist.
"""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from courriel.errors import InvalidInput

__all__ = ["Passwords", "check_password_text"]


def check_password_text(password: str) -> str:
    """Refuse empty passwords and control characters (they cannot be typed in a client).

    Raises:
        InvalidInput: the password is empty or holds a line break or NUL.
    """
    if not password:
        raise InvalidInput("the password is empty")
    if any(c in password for c in "\r\n\x00"):
        raise InvalidInput("the password holds a line break or NUL")
    return password


class Passwords:
    """Hashes and verifies passwords with one argon2id ``PasswordHasher``."""

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self.hasher = hasher or PasswordHasher()
        self._dummy: str | None = None

    async def hash(self, password: str) -> str:
        """Return the argon2id PHC string of ``password``."""
        return await asyncio.to_thread(self.hasher.hash, check_password_text(password))

    async def verify(self, stored: str | None, password: str) -> tuple[bool, bool]:
        """Check ``password`` against ``stored`` (None: unknown user).

        Returns:
            ``(ok, needs_rehash)``; needs_rehash is True when the hash parameters changed.
        """
        if stored is None:
            if self._dummy is None:
                self._dummy = await asyncio.to_thread(self.hasher.hash, "courriel-dummy")
            await asyncio.to_thread(self._verify, self._dummy, password)
            return False, False
        ok = await asyncio.to_thread(self._verify, stored, password)
        return ok, ok and self.hasher.check_needs_rehash(stored)

    def _verify(self, stored: str, password: str) -> bool:
        try:
            return bool(self.hasher.verify(stored, password))
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
