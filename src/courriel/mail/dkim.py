"""DKIM signing (RFC 6376) with RSA-SHA256 and Ed25519-SHA256 (RFC 8463): pure, no I/O.

Owns: relaxed/relaxed canonicalization (streaming for the body), the choice of signed
header fields, building and folding the ``DKIM-Signature`` field, and the key helpers
(generation, PEM, the ``p=`` value of the DNS record). Verification is not here: tests use
dkimpy as an independent verifier.

Invariants:
- Only relaxed canonicalization and SHA-256 are produced (``c=relaxed/relaxed``), so one
  body hash serves every signature of a message.
- The signature field is folded only where RFC 6376 allows FWS (between tags, around the
  ``:`` of ``h=``, inside base64 values), so relaxed canonicalization by a verifier yields
  exactly the bytes signed here.
- ``sign`` never reads the body: the caller streams it through :class:`BodyHasher` and
  passes the digest, so a large message is never held twice.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Sequence
from typing import Literal

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from courriel.errors import InvalidInput

__all__ = [
    "RECOMMENDED",
    "Algorithm",
    "BodyHasher",
    "PrivateKey",
    "algorithm_of",
    "canonicalize_body",
    "canonicalize_header",
    "generate_ed25519",
    "generate_rsa",
    "key_from_pem",
    "key_to_pem",
    "parse_header_fields",
    "public_key_record",
    "sign",
    "split_header_section",
    "split_message",
    "txt_record",
]

Algorithm = Literal["rsa-sha256", "ed25519-sha256"]
PrivateKey = rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey

# RFC 6376 §5.4.1: the fields a signer SHOULD sign, plus the ones a modern sender also
# covers (Message-ID, the MIME fields, Sender, List-Unsubscribe-Post, Feedback-ID), so that
# none of them can be added or altered in transit without breaking the signature.
RECOMMENDED: tuple[str, ...] = (
    "from",
    "sender",
    "reply-to",
    "subject",
    "date",
    "to",
    "cc",
    "resent-date",
    "resent-from",
    "resent-sender",
    "resent-to",
    "resent-cc",
    "resent-message-id",
    "in-reply-to",
    "references",
    "list-id",
    "list-help",
    "list-unsubscribe",
    "list-unsubscribe-post",
    "list-subscribe",
    "list-post",
    "list-owner",
    "list-archive",
    "message-id",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "feedback-id",
)

_WSP_RUN = re.compile(rb"[ \t]+")
_LINE_END = re.compile(rb"\r?\n")
_SP_CRLF = re.compile(rb" \r\n")
# WSP runs that are not already one SP (a lone SP needs no replacing: far fewer matches).
_WSP_TO_FOLD = re.compile(rb"\t[ \t]*| [ \t]+")
_CRLF = b"\r\n"
# RFC 5322 §2.1.1: lines SHOULD be at most 78 characters, CRLF excluded.
_FOLD_AT = 78
_SIGNATURE_NAME = "DKIM-Signature"


# --- canonicalization -------------------------------------------------------------------


def _relaxed_line(line: bytes) -> bytes:
    # RFC 6376 §3.4.4: WSP runs become one SP, then WSP at the end of the line goes.
    return _WSP_RUN.sub(b" ", line).rstrip(b" ")


class BodyHasher:
    """SHA-256 of the body under relaxed canonicalization (RFC 6376 §3.4.4), streamed.

    Chunks may split lines (even a CRLF) anywhere; the digest depends only on the
    concatenated bytes. Trailing empty lines are held back until a non-empty line shows
    they were not trailing, so memory stays bounded by one line plus a counter.
    """

    __slots__ = ("_done", "_hash", "_partial", "_pending_empty")

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self._partial = b""  # the current line, not yet ended by CRLF
        self._pending_empty = 0  # empty lines seen and not yet known to be non-trailing
        self._done = False

    def update(self, chunk: bytes) -> None:
        """Feed the next piece of the body (the bytes after the header section's blank line).

        Raises:
            InvalidInput: called after :meth:`digest`.
        """
        if self._done:
            raise InvalidInput("BodyHasher.update after digest")
        data = self._partial + chunk if self._partial else chunk
        cut = data.rfind(_CRLF)
        if cut < 0:
            self._partial = data
            return
        self._partial = data[cut + 2 :]
        # The complete lines at once, with two substitutions over the block instead of one
        # per line (a line-by-line loop took ~2 ms of a 20 KB campaign copy): WSP runs
        # become one SP, then an SP before CRLF goes (RFC 6376 §3.4.4).
        block = _SP_CRLF.sub(_CRLF, _WSP_TO_FOLD.sub(b" ", data[: cut + 2]))
        # Empty lines at the end of the block wait for a non-empty line after them.
        end = len(block)
        while end >= 2 and (end == 2 or block[end - 4 : end - 2] == _CRLF):
            end -= 2
        if end:
            if self._pending_empty:
                self._hash.update(_CRLF * self._pending_empty)
            self._hash.update(block[:end])
            self._pending_empty = 0
        self._pending_empty += (len(block) - end) // 2

    def _line(self, raw: bytes) -> None:
        line = _relaxed_line(raw)
        if not line:
            self._pending_empty += 1
            return
        if self._pending_empty:
            self._hash.update(_CRLF * self._pending_empty)
            self._pending_empty = 0
        self._hash.update(line + _CRLF)

    def digest(self) -> bytes:
        """Finish and return the 32-byte SHA-256 digest (the value of ``bh=``, decoded).

        RFC 6376 §3.4.4: a last line without CRLF gets one; empty lines at the end are
        ignored, so an empty body (or one of blank lines only) hashes as the empty string.
        """
        if not self._done:
            if self._partial:
                self._line(self._partial)
                self._partial = b""
            self._done = True
        return self._hash.digest()


def canonicalize_body(body: bytes) -> bytes:
    """Relaxed body canonicalization of a whole body (RFC 6376 §3.4.4), for tests and tools."""
    lines = body.split(_CRLF)
    if lines and lines[-1] == b"":
        lines.pop()  # the body ended with CRLF: no partial last line
    out = [_relaxed_line(line) for line in lines]
    while out and not out[-1]:
        out.pop()
    return b"".join(line + _CRLF for line in out)


def canonicalize_header(field: bytes) -> bytes:
    """Relaxed header canonicalization of one field (RFC 6376 §3.4.2), CRLF included.

    The name is lower-cased, the value unfolded, WSP runs become one SP, and WSP around
    the colon and at the end of the value is removed.

    Raises:
        InvalidInput: the field has no colon.
    """
    name, colon, value = field.partition(b":")
    if not colon:
        raise InvalidInput("header field without a colon")
    unfolded = _LINE_END.sub(b"", value)
    return name.rstrip(b" \t").lower() + b":" + _WSP_RUN.sub(b" ", unfolded).strip(b" ") + _CRLF


# --- the header section -----------------------------------------------------------------


def split_header_section(message_start: bytes) -> bytes | None:
    """The header section up to and including the empty line, or None when incomplete.

    A message that starts with CRLF has an empty header section: ``b"\\r\\n"`` is returned.
    """
    if message_start.startswith(_CRLF):
        return _CRLF
    end = message_start.find(b"\r\n\r\n")
    return None if end < 0 else message_start[: end + 4]


def split_message(message: bytes) -> tuple[bytes, bytes]:
    """Split a whole message into its header section (with the empty line) and its body.

    A message without an empty line is all header: the body is empty.
    """
    header = split_header_section(message)
    if header is None:
        return message, b""
    return header, message[len(header) :]


def parse_header_fields(header_section: bytes) -> list[tuple[str, bytes]]:
    """The fields of a header section, top to bottom: (lower-case name, raw field bytes).

    RFC 5322 §2.2.3: a line starting with WSP continues the field above it. The raw bytes
    keep the folding (without the final CRLF). Lines without a colon that do not continue
    a field (not valid RFC 5322) are skipped: they can be neither signed nor verified.
    """
    fields: list[tuple[str, bytes]] = []
    current: list[bytes] = []
    for line in _LINE_END.split(header_section):
        if line[:1] in (b" ", b"\t") and current:
            current.append(line)
            continue
        if current:
            fields.append(_field(current))
            current = []
        if b":" in line:
            current = [line]
    if current:
        fields.append(_field(current))
    return fields


def _field(lines: list[bytes]) -> tuple[str, bytes]:
    raw = _CRLF.join(lines)
    name = raw.partition(b":")[0].rstrip(b" \t").decode("utf-8", "replace").lower()
    return name, raw


def _select(
    fields: list[tuple[str, bytes]], headers: Sequence[str], oversign: Sequence[str]
) -> tuple[list[str], list[bytes]]:
    """The ``h=`` names and the canonicalized fields they sign, in ``h=`` order.

    RFC 6376 §5.4.2: each occurrence of a name in ``h=`` signs the next instance of the
    field from the bottom up. An oversigned name gets one more occurrence, which signs
    the null string (§5.4) and so forbids adding another instance later.
    """
    by_name: dict[str, list[bytes]] = {}
    for name, raw in fields:
        by_name.setdefault(name, []).append(raw)
    names: list[str] = []
    signed: list[bytes] = []
    extra = {o.lower() for o in oversign}
    wanted = dict.fromkeys([*(h.lower() for h in headers), *sorted(extra)])
    for name in wanted:
        for raw in reversed(by_name.get(name, [])):
            names.append(name)
            signed.append(canonicalize_header(raw))
        if name in extra:
            names.append(name)
    return names, signed


# --- the signature field ----------------------------------------------------------------


class _Folder:
    """Builds a folded header field from atoms, breaking lines only between atoms."""

    def __init__(self, name: str) -> None:
        self.lines: list[str] = []
        self.line = f"{name}:"

    def add(self, atom: str, *, glue: str = " ") -> None:
        if len(self.line) + len(glue) + len(atom) > _FOLD_AT:
            self.lines.append(self.line)
            self.line = "\t" + atom
        else:
            self.line += glue + atom

    def text(self) -> str:
        return "\r\n".join([*self.lines, self.line])


def _tag_atoms(names: list[str]) -> list[tuple[str, str]]:
    # RFC 6376 §3.5: FWS is allowed around the ":" separating h= names.
    atoms = [(f"h={names[0]}" if names else "h=", " ")]
    atoms += [(f":{name}", "") for name in names[1:]]
    atoms[-1] = (atoms[-1][0] + ";", atoms[-1][1])
    return atoms


def sign(
    *,
    header_section: bytes,
    body_hash: bytes,
    domain: str,
    selector: str,
    key: PrivateKey,
    algorithm: Algorithm,
    timestamp: int,
    headers: Sequence[str] = RECOMMENDED,
    oversign: Sequence[str] = ("from",),
) -> bytes:
    """Sign a message and return its folded ``DKIM-Signature`` field, CRLF included.

    Args:
        header_section: the message's header section (the empty line may be included).
        body_hash: :meth:`BodyHasher.digest` of the message's body.
        domain: the signing domain (``d=``), in A-labels.
        selector: the key's selector (``s=``).
        key: an RSA key for ``rsa-sha256``, an Ed25519 key for ``ed25519-sha256``.
        algorithm: the ``a=`` value; must match the key.
        timestamp: the signature time (``t=``), seconds since the epoch.
        headers: names of the fields to sign when present (every instance is signed).
        oversign: names signed once more than they occur, so none can be added.

    Raises:
        InvalidInput: the algorithm does not match the key, or the body hash is not
            a SHA-256 digest.
    """
    if algorithm_of(key) != algorithm:
        raise InvalidInput(f"a {type(key).__name__} cannot sign {algorithm}")
    if len(body_hash) != 32:
        raise InvalidInput("body_hash must be a SHA-256 digest")
    names, signed = _select(parse_header_fields(header_section), headers, oversign)
    folder = _Folder(_SIGNATURE_NAME)
    for atom in (
        "v=1;",
        f"a={algorithm};",
        "c=relaxed/relaxed;",
        f"d={domain};",
        f"s={selector};",
        f"t={timestamp};",
    ):
        folder.add(atom)
    for atom, glue in _tag_atoms(names):
        folder.add(atom, glue=glue)
    folder.add(f"bh={base64.b64encode(body_hash).decode('ascii')};")
    folder.add("b=")
    # RFC 6376 §3.7: the signature covers the signed fields, then this field with an
    # empty b= value, canonicalized and without its trailing CRLF.
    unsigned = canonicalize_header(folder.text().encode("ascii"))[:-2]
    data = b"".join(signed) + unsigned
    value = base64.b64encode(_signature(key, data)).decode("ascii")
    # The first piece stays on the b= line (never fold right after "b="), then FWS
    # may appear anywhere inside the base64 value.
    first = max(_FOLD_AT - len(folder.line), 8)
    folder.add(value[:first], glue="")
    for start in range(first, len(value), _FOLD_AT - 1):
        folder.add(value[start : start + _FOLD_AT - 1], glue="")
    return folder.text().encode("ascii") + _CRLF


def _signature(key: PrivateKey, data: bytes) -> bytes:
    if isinstance(key, rsa.RSAPrivateKey):
        # RFC 6376 §3.3.1: RSASSA-PKCS1-v1_5 with SHA-256.
        return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    # RFC 8463 §3: Ed25519 (pure) signs the SHA-256 hash of the canonicalized data.
    return key.sign(hashlib.sha256(data).digest())


# --- keys ------------------------------------------------------------------------------


def algorithm_of(key: PrivateKey) -> Algorithm:
    """The DKIM algorithm a key signs with."""
    return "rsa-sha256" if isinstance(key, rsa.RSAPrivateKey) else "ed25519-sha256"


def generate_rsa(bits: int = 2048) -> rsa.RSAPrivateKey:
    """A new RSA key (RFC 6376 §3.3.3: signers SHOULD use at least 1024 bits; we use 2048)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def generate_ed25519() -> ed25519.Ed25519PrivateKey:
    """A new Ed25519 key (RFC 8463)."""
    return ed25519.Ed25519PrivateKey.generate()


def key_to_pem(key: PrivateKey) -> str:
    """The key as unencrypted PKCS#8 PEM text."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


def key_from_pem(pem: str) -> PrivateKey:
    """Load an unencrypted PEM private key (RSA or Ed25519).

    Raises:
        InvalidInput: not a PEM private key, encrypted, or of another type.
    """
    try:
        key = serialization.load_pem_private_key(pem.encode("ascii"), password=None)
    except (ValueError, TypeError, UnicodeError, UnsupportedAlgorithm) as exc:
        raise InvalidInput(f"not a usable PEM private key: {exc}") from exc
    if not isinstance(key, rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey):
        raise InvalidInput(f"DKIM keys are RSA or Ed25519, not {type(key).__name__}")
    return key


def public_key_record(key: PrivateKey) -> str:
    """The base64 ``p=`` value of the key's DNS record.

    RFC 6376 §3.6.1: for RSA, the DER SubjectPublicKeyInfo; RFC 8463 §4: for Ed25519,
    the raw 32-octet public key.
    """
    public = key.public_key()
    if isinstance(public, rsa.RSAPublicKey):
        der = public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    else:
        der = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(der).decode("ascii")


def txt_record(algorithm: Algorithm, public_key: str) -> str:
    """The TXT value to publish at ``<selector>._domainkey.<domain>`` (RFC 6376 §3.6.1)."""
    kind = "rsa" if algorithm == "rsa-sha256" else "ed25519"
    return f"v=DKIM1; k={kind}; p={public_key}"
