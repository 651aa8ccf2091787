"""Modified UTF-7 for IMAP mailbox names (RFC 3501 §5.1.3, kept by RFC 9051 §5.1.3).

This module owns the conversion between Unicode mailbox names and their IMAP4rev1 wire
form. It is pure and has no state.

Invariants:
    * :func:`decode_mutf7` accepts only the canonical encoding, the one
      :func:`encode_mutf7` produces: ``decode`` then ``encode`` gives back the input.
      Anything else (bad base64, non-zero padding bits, printable ASCII inside a shift,
      two adjacent shifts, an unterminated shift, raw 8-bit or control octets) raises
      :class:`courriel.errors.SyntaxProblem`, the only exception that leaves this module.
    * ``encode_mutf7(decode_mutf7(x)) == x`` and ``decode_mutf7(encode_mutf7(s)) == s``
      for every valid ``x`` and every ``s`` without lone surrogates.
"""

from __future__ import annotations

import binascii
import re

from courriel.errors import SyntaxProblem

__all__ = ["decode_mutf7", "encode_mutf7"]

# RFC 3501 §5.1.3: printable US-ASCII (0x20-0x7e) except "&" represents itself.
_DIRECT = re.compile(r"[\x20-\x25\x27-\x7e]+")
_SHIFT_BODY = re.compile(r"[A-Za-z0-9+,]*")
_INVALID = "Mailbox name is not valid modified UTF-7"


def _b64_encode(chunk: str) -> str:
    raw = chunk.encode("utf-16-be", "surrogatepass")
    # RFC 3501 §5.1.3: modified BASE64 uses "," for "/" and omits the "=" padding.
    return binascii.b2a_base64(raw, newline=False).decode("ascii").rstrip("=").replace("/", ",")


def encode_mutf7(name: str) -> str:
    """Encode a Unicode mailbox name in modified UTF-7.

    Args:
        name: the mailbox name.

    Returns:
        The ASCII wire form: ``"&"`` becomes ``"&-"``, other characters outside printable
        ASCII are shifted into modified base64 of their UTF-16 form.
    """
    out: list[str] = []
    pos = 0
    while pos < len(name):
        direct = _DIRECT.match(name, pos)
        if direct is not None:
            out.append(direct.group())
            pos = direct.end()
        elif name[pos] == "&":
            out.append("&-")
            pos += 1
        else:
            end = pos + 1
            while end < len(name) and not ("\x20" <= name[end] <= "\x7e"):
                end += 1
            out.append("&" + _b64_encode(name[pos:end]) + "-")
            pos = end
    return "".join(out)


def _b64_decode(body: str) -> str:
    # Base64 of UTF-16: the leftover bits (len * 6 mod 8) are dropped by the decoder;
    # the round-trip check in decode_mutf7 rejects non-zero ones.
    if len(body) % 4 == 1:
        raise SyntaxProblem(_INVALID)
    padded = body.replace(",", "/") + "=" * (-len(body) % 4)
    try:
        raw = binascii.a2b_base64(padded, strict_mode=True)
        return raw.decode("utf-16-be")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise SyntaxProblem(_INVALID) from None


def decode_mutf7(text: str) -> str:
    """Decode a modified UTF-7 mailbox name.

    Args:
        text: the wire form (ASCII).

    Returns:
        The Unicode name.

    Raises:
        SyntaxProblem: the text is not the canonical modified UTF-7 of any name.
    """
    if "&" not in text:
        if _DIRECT.fullmatch(text) is None and text:
            raise SyntaxProblem(_INVALID)
        return text
    out: list[str] = []
    pos = 0
    while pos < len(text):
        direct = _DIRECT.match(text, pos)
        if direct is not None:
            out.append(direct.group())
            pos = direct.end()
            continue
        if text[pos] != "&":
            raise SyntaxProblem(_INVALID)
        body = _SHIFT_BODY.match(text, pos + 1)
        assert body is not None  # the pattern matches the empty string
        end = body.end()
        if end >= len(text) or text[end] != "-":
            raise SyntaxProblem(_INVALID)
        out.append(_b64_decode(body.group()) if body.group() else "&")
        pos = end + 1
    name = "".join(out)
    # RFC 3501 §5.1.3: printable ASCII MUST NOT be shifted, and there is one encoding
    # per name; comparing with our canonical encoding rejects every other spelling.
    if encode_mutf7(name) != text:
        raise SyntaxProblem(_INVALID)
    return name
