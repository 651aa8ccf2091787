"""The capability lists of an IMAP session (RFC 9051 §6.1.1, §7.2.2).

This module owns which extensions courriel advertises and when. Invariants:

* Before authentication: ``LOGINDISABLED`` and ``STARTTLS`` without TLS (RFC 9051
  §6.2.3, RFC 8314), ``AUTH=PLAIN`` only once TLS is active.
* After authentication the list grows by the extensions that only make sense then;
  nothing listed here is half done (UTF8=ACCEPT is not advertised).
"""

from __future__ import annotations

__all__ = ["ENABLEABLE", "after_login", "before_login"]

# Advertised in every state (RFC 9051, RFC 3501, RFC 4959 SASL-IR, RFC 7888 LITERAL+,
# RFC 2971 ID, RFC 5161 ENABLE, RFC 2177 IDLE).
_ALWAYS = ("IMAP4rev1", "IMAP4rev2", "SASL-IR", "LITERAL+", "ID", "ENABLE", "IDLE")

# Extensions that ENABLE switches on (RFC 5161 §3.1); the rest are ignored.
ENABLEABLE = frozenset({"CONDSTORE", "QRESYNC", "IMAP4REV2"})


def before_login(*, tls_active: bool, tls_available: bool) -> list[str]:
    """The capabilities of the not-authenticated state.

    Args:
        tls_active: the connection is encrypted (implicit TLS or after STARTTLS).
        tls_available: STARTTLS could be offered (a certificate is configured).
    """
    caps = list(_ALWAYS)
    if not tls_active and tls_available:
        caps.append("STARTTLS")
    # RFC 9051 §6.2.3: LOGINDISABLED while plaintext login is refused.
    caps.append("AUTH=PLAIN" if tls_active else "LOGINDISABLED")
    return caps


def after_login(*, append_limit: int) -> list[str]:
    """The capabilities of the authenticated and selected states.

    Args:
        append_limit: the largest message APPEND accepts (RFC 7889 APPENDLIMIT).
    """
    return [
        *_ALWAYS,
        "NAMESPACE",  # RFC 2342
        "UNSELECT",  # RFC 3691
        "CHILDREN",  # RFC 3348
        "UIDPLUS",  # RFC 4315
        "MOVE",  # RFC 6851
        "LIST-EXTENDED",  # RFC 5258
        "LIST-STATUS",  # RFC 5819
        "SPECIAL-USE",  # RFC 6154
        "CREATE-SPECIAL-USE",  # RFC 6154 §3
        "CONDSTORE",  # RFC 7162 §3.1
        "QRESYNC",  # RFC 7162 §3.2
        "ESEARCH",  # RFC 4731
        "SEARCHRES",  # RFC 5182 (part of IMAP4rev2, RFC 9051 §6.4.4.1)
        "BINARY",  # RFC 3516
        "STATUS=SIZE",  # RFC 8438
        f"APPENDLIMIT={append_limit}",  # RFC 7889
    ]
