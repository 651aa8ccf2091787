"""The references campaign mail carries: VERP return paths and tracking links.

Owns two formats, both verified before anything is looked up:

- **VERP** (variable envelope return path): ``bounces+<ref>.<mac>@<sending domain>``, where
  ``ref`` is :class:`Ref` spelled ``c<id>`` (a ``campaign_recipients`` row) or ``t<id>``
  (a ``transactional_messages`` row) and ``mac`` the first 8 octets of
  HMAC-SHA256(key, "verp" ‖ 0x00 ‖ ref) in lower-case hex: a local part of at most 43
  octets (RFC 5321 §4.5.3.1.1 allows 64), case-insensitive as some relays fold it, and
  unguessable, so a forged bounce cannot suppress a stranger.
- **Links** under ``http.public_url``: ``/o/<token>`` (open pixel), ``/c/<token>`` (click;
  the target URL is inside the signed token, so no stored map is needed and a tampered
  target never redirects), ``/u/<token>`` (unsubscribe page; ``POST`` is RFC 8058
  one-click), ``/p/<token>`` (preference centre), ``/v/<token>`` (view in browser).
  Tokens are :class:`courriel.marketing.links.LinkSigner` tokens, one purpose each.

Invariant: every parse failure is :class:`courriel.errors.InvalidInput`; nothing here reads
the database.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from courriel.errors import InvalidInput
from courriel.marketing.links import LinkSigner

__all__ = [
    "LINK_MAX_AGE",
    "VERP_PREFIX",
    "Links",
    "Ref",
    "parse_verp",
    "trackable",
    "verp_address",
]

VERP_PREFIX = "bounces+"
# Links in mail stay valid as long as anyone may keep the mail (a decade).
LINK_MAX_AGE = timedelta(days=3650)

RefKind = Literal["c", "t"]
_REF = re.compile(r"^([ct])([1-9][0-9]{0,18})$")
_VERP_LOCAL = re.compile(r"^bounces\+([ct][1-9][0-9]{0,18})\.([0-9a-f]{16})$")


@dataclass(frozen=True, slots=True)
class Ref:
    """Which message a link or a bounce belongs to."""

    kind: RefKind  # "c": campaign_recipients.id; "t": transactional_messages.id
    id: int

    def __str__(self) -> str:
        return f"{self.kind}{self.id}"

    @classmethod
    def parse(cls, text: str) -> Ref:
        """``c123`` / ``t45``; InvalidInput otherwise."""
        match = _REF.match(text) if isinstance(text, str) else None
        if match is None:
            raise InvalidInput("not a message reference", field="ref")
        kind: RefKind = "c" if match.group(1) == "c" else "t"
        return cls(kind, int(match.group(2)))


def _verp_mac(key: bytes, ref: Ref) -> str:
    # RFC 2104 HMAC-SHA256, truncated to 64 bits (§5: at least half the output, >= 80 bits
    # is recommended for general use; 64 bits suffice for an unguessable return path).
    digest = hmac.new(key, b"verp\x00" + str(ref).encode("ascii"), hashlib.sha256).digest()
    return digest[:8].hex()


def verp_address(key: bytes, ref: Ref, domain: str) -> str:
    """The envelope sender for ``ref``'s copy, at ``domain`` (the From: domain)."""
    return f"{VERP_PREFIX}{ref}.{_verp_mac(key, ref)}@{domain}"


def parse_verp(key: bytes, address: str) -> Ref:
    """The reference of a VERP address, verified; InvalidInput when it is not ours."""
    local, sep, _domain = address.rpartition("@")
    match = _VERP_LOCAL.match(local.lower()) if sep else None
    if match is None:
        raise InvalidInput("not a VERP address", field="recipient")
    ref = Ref.parse(match.group(1))
    if not hmac.compare_digest(match.group(2), _verp_mac(key, ref)):
        raise InvalidInput("the VERP address is not valid", field="recipient")
    return ref


class Links:
    """Builds and reads the tracking and unsubscribe links of campaign and transactional mail."""

    def __init__(self, signer: LinkSigner, public_url: str) -> None:
        self._signer = signer
        self._base = public_url.rstrip("/")

    def _url(self, path: str, purpose: str, payload: dict[str, object]) -> str:
        return f"{self._base}/{path}/{self._signer.sign(purpose, payload)}"

    def open_url(self, ref: Ref) -> str:
        """The open pixel (a 1x1 GIF)."""
        return self._url("o", "open", {"r": str(ref)})

    def click_url(self, ref: Ref, target: str) -> str:
        """A tracked link to ``target`` (an http(s) URL without control characters or spaces:
        callers leave other links as they are, see :func:`trackable`)."""
        return self._url("c", "click", {"r": str(ref), "u": target})

    def unsubscribe_url(self, ref: Ref) -> str:
        """The unsubscribe page; the same URL takes the RFC 8058 one-click POST."""
        return self._url("u", "unsubscribe", {"r": str(ref)})

    def preferences_url(self, ref: Ref) -> str:
        """The preference centre (lists and channels)."""
        return self._url("p", "preferences", {"r": str(ref)})

    def view_url(self, ref: Ref) -> str:
        """The message in a browser."""
        return self._url("v", "view", {"r": str(ref)})

    def read(self, purpose: str, token: str) -> tuple[Ref, dict[str, object]]:
        """The reference (and whole payload) of a link token made for ``purpose``.

        Raises:
            InvalidInput: (field "token") tampered, foreign, expired or malformed.
        """
        payload = self._signer.verify(purpose, token, max_age=LINK_MAX_AGE)
        try:
            ref = Ref.parse(str(payload["r"]))
        except (KeyError, InvalidInput) as exc:
            raise InvalidInput("the link is not valid", field="token") from exc
        if purpose == "click" and not _http_url(payload.get("u")):
            raise InvalidInput("the link is not valid", field="token")
        return ref, payload


def trackable(url: str) -> bool:
    """Whether ``url`` may become a tracked click: http(s), no control characters or spaces."""
    return _http_url(url)


def _http_url(value: object) -> bool:
    # No control characters or spaces: the target becomes a Location header, whose value
    # is a URI reference (RFC 9110 §10.2.2), where they have no place.
    return (
        isinstance(value, str)
        and value.lower().startswith(("http://", "https://"))
        and not any(ord(c) <= 0x20 or ord(c) == 0x7F for c in value)
    )
