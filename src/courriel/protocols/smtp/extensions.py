"""ESMTP service extensions: the EHLO keyword list and MAIL FROM parameters.

This module owns what the server advertises (RFC 5321 §4.1.1.1) and how the
parameters of advertised extensions are read. AUTH is advertised only on
submission listeners once TLS is active (RFC 4954 §4, RFC 6409); STARTTLS only
while the connection is still in clear text (RFC 3207 §4.2).
"""

from __future__ import annotations

from dataclasses import dataclass

from courriel.errors import ProtocolError

__all__ = ["AUTH_MECHANISMS", "MailParams", "ehlo_keywords", "read_mail_params"]

AUTH_MECHANISMS = ("PLAIN", "LOGIN")


@dataclass(frozen=True, slots=True, kw_only=True)
class MailParams:
    """The MAIL FROM parameters we understand."""

    size: int | None = None  # RFC 1870 SIZE=
    body: str | None = None  # RFC 6152 BODY=7BIT|8BITMIME
    smtputf8: bool = False  # RFC 6531 §3.4 SMTPUTF8


def ehlo_keywords(*, max_message_size: int, starttls: bool, auth: bool) -> list[str]:
    """Return the EHLO keywords, in a stable order.

    Args:
        max_message_size: the SIZE value (RFC 1870 §4), 0 meaning no fixed limit.
        starttls: offer STARTTLS (clear-text connection with a certificate).
        auth: offer AUTH (submission listener over TLS).
    """
    keywords = [
        "PIPELINING",  # RFC 2920
        f"SIZE {max_message_size}" if max_message_size else "SIZE",  # RFC 1870
        "8BITMIME",  # RFC 6152
        "ENHANCEDSTATUSCODES",  # RFC 2034
        "SMTPUTF8",  # RFC 6531
        "CHUNKING",  # RFC 3030
    ]
    if starttls:
        keywords.append("STARTTLS")  # RFC 3207
    if auth:
        keywords.append("AUTH " + " ".join(AUTH_MECHANISMS))  # RFC 4954
    return keywords


def _bad(text: str, code: int = 501) -> ProtocolError:
    return ProtocolError(code, "5.5.4", text)


def read_mail_params(params: tuple[tuple[str, str | None], ...], max_size: int) -> MailParams:
    """Interpret MAIL FROM parameters.

    Raises:
        ProtocolError: 501 5.5.4 bad value, 555 5.5.4 unsupported parameter
            (RFC 5321 §4.1.1.11), 552 5.3.4 declared size above the limit (RFC 1870 §6.1).
    """
    size: int | None = None
    body: str | None = None
    smtputf8 = False
    for key, value in params:
        if key == "SIZE":
            if value is None or not (value.isascii() and value.isdigit()) or len(value) > 18:
                raise _bad("Bad SIZE value")
            size = int(value)
            if max_size and size > max_size:
                raise ProtocolError(552, "5.3.4", "Message size exceeds fixed maximum message size")
        elif key == "BODY":
            body = (value or "").upper()
            if body not in ("7BIT", "8BITMIME"):
                # RFC 3030 §3 BINARYMIME is not offered.
                raise _bad("Unsupported BODY type", 555)
        elif key == "SMTPUTF8":
            if value is not None:
                raise _bad("SMTPUTF8 takes no value")
            smtputf8 = True
        elif key == "AUTH":
            # RFC 4954 §5: the AUTH= parameter may be ignored by the server.
            continue
        else:
            raise _bad("Unsupported parameter", 555)
    return MailParams(size=size, body=body, smtputf8=smtputf8)
