"""ParsedMessage: ENVELOPE, BODY/BODYSTRUCTURE, sections and BINARY on real-world shapes.

The expected BODYSTRUCTURE and ENVELOPE strings were checked against Dovecot 2.3's
answers for the same messages (see ``SAMPLES``).
"""

from __future__ import annotations

import base64

import pytest

from courriel.errors import InvalidInput
from courriel.protocols.imap.mime import ParsedMessage, decode_words
from courriel.protocols.imap.types import Section


def crlf(text: str) -> bytes:
    return text.replace("\n", "\r\n").encode("utf-8")


PLAIN = crlf(
    """Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)
From: Fred Foobar <foobar@Blurdybloop.example>
Subject: afternoon meeting
To: mooch@owatagu.siam.example
Message-Id: <B27397-0100000@Blurdybloop.example>
MIME-Version: 1.0
Content-Type: TEXT/PLAIN; CHARSET=US-ASCII

Hello Joe, do you think we can meet at 3:30 tomorrow?
"""
)

ALTERNATIVE = crlf(
    """From: "Doe, Jane" <jane@example.org>
To: Bob <bob@example.com>, carol@example.com
Cc: undisclosed-recipients:;
Subject: =?utf-8?q?Caf=C3=A9?= menu
Date: Tue, 03 Mar 2026 10:00:00 +0100
In-Reply-To: <prev@example.org>
Message-ID: <alt@example.org>
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="b1"

preamble
--b1
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable

Caf=C3=A9 du jour
--b1
Content-Type: text/html; charset=utf-8

<p>Caf\u00e9</p>
--b1--
epilogue
"""
)

PDF = base64.encodebytes(b"%PDF-1.4 fake but binary \x00\xff" * 4).decode()

MIXED = crlf(
    f"""From: shop@example.com
To: Friends: alice@example.net, "Bob B." <bob@example.net>;, eve@example.com
Subject: Your invoice
Date: Wed, 4 Mar 2026 08:30:00 +0000
Message-ID: <mixed@example.com>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary=outer

--outer
Content-Type: text/plain; charset=iso-8859-1
Content-Transfer-Encoding: 8bit

Thanks for your order.
--outer
Content-Type: application/pdf; name="invoice.pdf"
Content-Transfer-Encoding: base64
Content-Disposition: attachment; filename="invoice.pdf"
Content-ID: <inv@example.com>
Content-Description: Invoice
Content-Language: en, fr
Content-Location: http://example.com/invoice.pdf
Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==

{PDF}--outer--
"""
)

NESTED = crlf(
    """From: Forwarder <fwd@example.com>
Subject: Fwd: hello
Date: Thu, 5 Mar 2026 12:00:00 -0500
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="x"

--x
Content-Type: text/plain

See below.
--x
Content-Type: message/rfc822

From: Original <orig@example.org>
To: fwd@example.com
Subject: hello
Date: Wed, 4 Mar 2026 09:00:00 +0000
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="y"

--y
Content-Type: text/plain; charset=us-ascii

inner plain
--y
Content-Type: text/html; charset=us-ascii

<b>inner html</b>
--y--

--x--
"""
)

NO_CONTENT_TYPE = crlf(
    """From: someone@example.com
Subject: bare
Content-Transfer-Encoding: quoted-printable

no content type at all
two lines
"""
)

ODD = (
    b"Subject: caf\xc3\xa9 8-bit\r\n"
    b"From: =?iso-8859-1?q?J=F6rg?= <jorg@example.de>, (comment only) plain@example.de (Plain)\r\n"
    b"To: just-a-name\r\n"
    b"X-Folded: first\r\n second\r\n"
    b'Content-Type: text/plain; charset="utf-8"; format=flowed\r\n'
    b"Content-Transfer-Encoding: x-uuencode\r\n"
    b"\r\n"
    b"body with caf\xc3\xa9\r\n"
)

EXTRA: dict[str, bytes] = {}
EXTRA["mixedcase"] = crlf("""From: a@b.example
Subject: "quoted" \\ back
Subject: second subject
MIME-Version: 1.0
Content-Type: Multipart/Mixed; Boundary="BB"

--BB
Content-Type: Text/Plain; Charset=US-ASCII
Content-Transfer-Encoding: 7BIT

x
--BB
Content-Type: APPLICATION/Octet-Stream; Name*0="long"; Name*1="name.bin"
Content-Disposition: INLINE
Content-Transfer-Encoding: BASE64

AAEC
--BB
Content-Type: application/pdf; name*=utf-8''%E2%82%AC.pdf

abc
--BB--
""")
EXTRA["root7bit"] = crlf("""Subject:
Content-Type: text/plain
Content-Transfer-Encoding: 7BIT

hi""")
EXTRA["noboundary"] = crlf("""Content-Type: multipart/mixed; boundary="zz"

no delimiter here
""")
EXTRA["noboundaryparam"] = crlf("""Content-Type: multipart/mixed

body
""")
EXTRA["rootrfc822"] = crlf("""From: outer@example.com
Content-Type: message/rfc822

From: inner@example.com
Subject: inner

inner body
""")
EXTRA["digest"] = crlf("""Content-Type: multipart/digest; boundary=d

--d

From: one@example.com
Subject: one

first
--d
Content-Type: text/plain

second
--d--
""")
EXTRA["addresses"] = crlf("""From: <@a.example,@b.example:joe@c.example>
Sender: "john doe"@example.com
Reply-To: "a \\"b\\" c" <x@y.example>
To: <>, Group:;, Other: <q@r.example>
Cc: John  Smith <js@example.com>, "" <empty@example.com>
Bcc: broken@
Message-ID: <id@x>
In-Reply-To: <a@b> <c@d>
Date:   Mon, 1 Jan 2024 00:00:00 +0000

body
""")
EXTRA["headeronly"] = crlf("""Subject: no body
From: x@y.example
""")

LF_ONLY = (
    b"Subject: lf\nContent-Type: multipart/mixed; boundary=q\n\n"
    b"--q\nContent-Type: text/plain\n\nline1\nline2\n--q--\n"
)
EXTRA["emptyparthdr"] = crlf("""Content-Type: multipart/mixed; boundary=e

--e

no header part
--e
Content-Type: text/plain; charset=utf-8

body2

--e--
""")
EXTRA["q1"] = crlf('Subject: one " quote\nFrom: "x \\\\ y" <a@b.c>\n\nb\n')
EXTRA["q2"] = crlf('Subject: a \\\\ b\nFrom: "x \\" y" <a@b.c>\n\nb\n')
EXTRA["q5"] = crlf('Subject: """""\nFrom: "x \\"\\" y" <a@b.c>\n\nb\n')
EXTRA["q4"] = crlf('Subject: """"\n\nb\n')

EXTRA["p7a"] = crlf("Content-Type: text/plain; charset=us-ascii; format=flowed\n\nx\n")
EXTRA["p7b"] = crlf("Content-Type: text/plain; format=flowed; charset=us-ascii\n\nx\n")
EXTRA["cid"] = crlf(
    "MIME-Version: 1.0\nContent-ID:\n <folded@x>\nSubject: a\n b\nCc: x@y\n\tz\n\nx\n"
)
EXTRA["comment"] = crlf(
    "Content-Type: text/plain (comment); charset=utf-8;\n"
    "Content-Transfer-Encoding: Quoted-Printable\n\nx\n"
)
EXTRA["noslash"] = crlf("Content-Type: text\n\nx\n")
EXTRA["html"] = crlf("Content-Type: text/html; charset=UTF-8\n\n<p>x</p>\n")
EXTRA["addr2"] = crlf(
    "From: Name <a@b.c> (comment), x@y.z (one) (two)\n"
    "To: a@b.c, , d@e.f\n"
    "Cc: a@b.c; d@e.f\n"
    'Bcc: "" <a@b.c>, <a@b.c>, a.b@c.d\n'
    "Date: Mon,\n 1 Jan 2024 00:00:00 +0000\n\nx\n"
)
EXTRA["delimws"] = crlf(
    "Content-Type: multipart/mixed; boundary=b\n\n--b  \nContent-Type: text/plain\n\n"
    "one\n--bx\nstill one?\n--b--  \nepi\n"
)
EXTRA["8bitparam"] = (
    b'Content-Type: application/pdf; name="caf\xc3\xa9.pdf"\r\n'
    b"Content-Disposition: attachment; filename*=utf-8''caf%C3%A9.pdf\r\n"
    b"MIME-Version: 1.0\r\n\r\nx\r\n"
)
EXTRA["emptysubj"] = crlf("Subject: \nFrom: \nTo: undisclosed-recipients:;\nMessage-ID:\n\nx\n")
EXTRA["lang"] = crlf(
    "MIME-Version: 1.0\nContent-Language: en-US\n"
    "Content-Disposition: inline; filename=a.txt\n"
    "Content-Description: =?utf-8?q?d=C3=A9?=\nContent-MD5: abc\n\nx\n"
)
EXTRA["subject_spaces"] = crlf("Subject:  two  spaces\tand tab \nFrom: a@b.c\n\nx\n")


SAMPLES = {
    "plain": PLAIN,
    "alternative": ALTERNATIVE,
    "mixed": MIXED,
    "nested": NESTED,
    "no_content_type": NO_CONTENT_TYPE,
    "odd": ODD,
    **EXTRA,
}


def sec(
    part: tuple[int, ...] = (), text: str | None = None, fields: tuple[str, ...] = ()
) -> Section:
    return Section(part=part, text=text, fields=fields)


# Dovecot 2.3.19's answers for SAMPLES: (BODYSTRUCTURE, BODY, ENVELOPE).
DOVECOT: dict[str, tuple[bytes, bytes, bytes]] = {
    "plain": (
        (b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 55 1 NIL NIL NIL NIL)'),
        (b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 55 1)'),
        (
            b'("Mon, 7 Feb 1994 21:52:25 -0800 (PST)" "afternoon meeti'
            b'ng" (("Fred Foobar" NIL "foobar" "Blurdybloop.example"))'
            b' (("Fred Foobar" NIL "foobar" "Blurdybloop.example")) (('
            b'"Fred Foobar" NIL "foobar" "Blurdybloop.example")) ((NIL'
            b' NIL "mooch" "owatagu.siam.example")) NIL NIL NIL "<B273'
            b'97-0100000@Blurdybloop.example>")'
        ),
    ),
    "alternative": (
        (
            b'(("text" "plain" ("charset" "utf-8") NIL NIL "quoted-pri'
            b'ntable" 17 0 NIL NIL NIL NIL)("text" "html" ("charset" "'
            b'utf-8") NIL NIL "7bit" 12 0 NIL NIL NIL NIL) "alternativ'
            b'e" ("boundary" "b1") NIL NIL NIL)'
        ),
        (
            b'(("text" "plain" ("charset" "utf-8") NIL NIL "quoted-pri'
            b'ntable" 17 0)("text" "html" ("charset" "utf-8") NIL NIL '
            b'"7bit" 12 0) "alternative")'
        ),
        (
            b'("Tue, 03 Mar 2026 10:00:00 +0100" "=?utf-8?q?Caf=C3=A9?'
            b'= menu" (("Doe, Jane" NIL "jane" "example.org")) (("Doe,'
            b' Jane" NIL "jane" "example.org")) (("Doe, Jane" NIL "jan'
            b'e" "example.org")) (("Bob" NIL "bob" "example.com")(NIL '
            b'NIL "carol" "example.com")) ((NIL NIL "undisclosed-recip'
            b'ients" NIL)(NIL NIL NIL NIL)) NIL "<prev@example.org>" "'
            b'<alt@example.org>")'
        ),
    ),
    "mixed": (
        (
            b'(("text" "plain" ("charset" "iso-8859-1") NIL NIL "8bit"'
            b' 22 0 NIL NIL NIL NIL)("application" "pdf" ("name" "invo'
            b'ice.pdf") "<inv@example.com>" "Invoice" "base64" 146 "Q2'
            b'hlY2sgSW50ZWdyaXR5IQ==" ("attachment" ("filename" "invoi'
            b'ce.pdf")) ("en" "fr") "http://example.com/invoice.pdf") '
            b'"mixed" ("boundary" "outer") NIL NIL NIL)'
        ),
        (
            b'(("text" "plain" ("charset" "iso-8859-1") NIL NIL "8bit"'
            b' 22 0)("application" "pdf" ("name" "invoice.pdf") "<inv@'
            b'example.com>" "Invoice" "base64" 146) "mixed")'
        ),
        (
            b'("Wed, 4 Mar 2026 08:30:00 +0000" "Your invoice" ((NIL N'
            b'IL "shop" "example.com")) ((NIL NIL "shop" "example.com"'
            b')) ((NIL NIL "shop" "example.com")) ((NIL NIL "Friends" '
            b'NIL)(NIL NIL "alice" "example.net")("Bob B." NIL "bob" "'
            b'example.net")(NIL NIL NIL NIL)(NIL NIL "eve" "example.co'
            b'm")) NIL NIL NIL "<mixed@example.com>")'
        ),
    ),
    "nested": (
        (
            b'(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 1'
            b'0 0 NIL NIL NIL NIL)("message" "rfc822" NIL NIL NIL "7bi'
            b't" 322 ("Wed, 4 Mar 2026 09:00:00 +0000" "hello" (("Orig'
            b'inal" NIL "orig" "example.org")) (("Original" NIL "orig"'
            b' "example.org")) (("Original" NIL "orig" "example.org"))'
            b' ((NIL NIL "fwd" "example.com")) NIL NIL NIL NIL) (("tex'
            b't" "plain" ("charset" "us-ascii") NIL NIL "7bit" 11 0 NI'
            b'L NIL NIL NIL)("text" "html" ("charset" "us-ascii") NIL '
            b'NIL "7bit" 17 0 NIL NIL NIL NIL) "alternative" ("boundar'
            b'y" "y") NIL NIL NIL) 16 NIL NIL NIL NIL) "mixed" ("bound'
            b'ary" "x") NIL NIL NIL)'
        ),
        (
            b'(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 1'
            b'0 0)("message" "rfc822" NIL NIL NIL "7bit" 322 ("Wed, 4 '
            b'Mar 2026 09:00:00 +0000" "hello" (("Original" NIL "orig"'
            b' "example.org")) (("Original" NIL "orig" "example.org"))'
            b' (("Original" NIL "orig" "example.org")) ((NIL NIL "fwd"'
            b' "example.com")) NIL NIL NIL NIL) (("text" "plain" ("cha'
            b'rset" "us-ascii") NIL NIL "7bit" 11 0)("text" "html" ("c'
            b'harset" "us-ascii") NIL NIL "7bit" 17 0) "alternative") '
            b'16) "mixed")'
        ),
        (
            b'("Thu, 5 Mar 2026 12:00:00 -0500" "Fwd: hello" (("Forwar'
            b'der" NIL "fwd" "example.com")) (("Forwarder" NIL "fwd" "'
            b'example.com")) (("Forwarder" NIL "fwd" "example.com")) N'
            b"IL NIL NIL NIL NIL)"
        ),
    ),
    "no_content_type": (
        (b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 35 2 NIL NIL NIL NIL)'),
        (b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 35 2)'),
        (
            b'(NIL "bare" ((NIL NIL "someone" "example.com")) ((NIL NI'
            b'L "someone" "example.com")) ((NIL NIL "someone" "example'
            b'.com")) NIL NIL NIL NIL NIL)'
        ),
    ),
    "odd": (
        (
            b'("text" "plain" ("charset" "utf-8" "format" "flowed") NI'
            b'L NIL "x-uuencode" 17 1 NIL NIL NIL NIL)'
        ),
        (b'("text" "plain" ("charset" "utf-8" "format" "flowed") NIL NIL "x-uuencode" 17 1)'),
        (
            b'(NIL {11}\r\ncaf\xc3\xa9 8-bit (("=?iso-8859-1?q?J=F6rg?=" NIL "'
            b'jorg" "example.de")("Plain" NIL "plain" "example.de")) ('
            b'("=?iso-8859-1?q?J=F6rg?=" NIL "jorg" "example.de")("Pla'
            b'in" NIL "plain" "example.de")) (("=?iso-8859-1?q?J=F6rg?'
            b'=" NIL "jorg" "example.de")("Plain" NIL "plain" "example'
            b'.de")) ((NIL NIL "just-a-name" "MISSING_DOMAIN")) NIL NI'
            b"L NIL NIL)"
        ),
    ),
    "mixedcase": (
        (
            b'(("Text" "Plain" ("Charset" "US-ASCII") NIL NIL "7BIT" 1'
            b' 0 NIL NIL NIL NIL)("APPLICATION" "Octet-Stream" ("Name"'
            b' "longname.bin") NIL NIL "BASE64" 4 NIL ("INLINE" NIL) N'
            b'IL NIL)("application" "pdf" ("name*" "utf-8\'\'%E2%82%AC.p'
            b'df") NIL NIL "7bit" 3 NIL NIL NIL NIL) "Mixed" ("Boundar'
            b'y" "BB") NIL NIL NIL)'
        ),
        (
            b'(("Text" "Plain" ("Charset" "US-ASCII") NIL NIL "7BIT" 1'
            b' 0)("APPLICATION" "Octet-Stream" ("Name" "longname.bin")'
            b' NIL NIL "BASE64" 4)("application" "pdf" ("name*" "utf-8'
            b'\'\'%E2%82%AC.pdf") NIL NIL "7bit" 3) "Mixed")'
        ),
        (
            b'(NIL "second subject" ((NIL NIL "a" "b.example")) ((NIL '
            b'NIL "a" "b.example")) ((NIL NIL "a" "b.example")) NIL NI'
            b"L NIL NIL NIL)"
        ),
    ),
    "root7bit": (
        (b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 2 0 NIL NIL NIL NIL)'),
        (b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 2 0)'),
        (b'(NIL "" NIL NIL NIL NIL NIL NIL NIL NIL)'),
    ),
    "noboundary": (
        (
            b'(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0'
            b' 0 NIL NIL NIL NIL) "mixed" ("boundary" "zz") NIL NIL NI'
            b"L)"
        ),
        (b'(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0) "mixed")'),
        (b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"),
    ),
    "noboundaryparam": (
        (
            b'(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0'
            b' 0 NIL NIL NIL NIL) "mixed" NIL NIL NIL NIL)'
        ),
        (b'(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0) "mixed")'),
        (b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"),
    ),
    "rootrfc822": (
        (
            b'("message" "rfc822" NIL NIL NIL "7bit" 55 (NIL "inner" ('
            b'(NIL NIL "inner" "example.com")) ((NIL NIL "inner" "exam'
            b'ple.com")) ((NIL NIL "inner" "example.com")) NIL NIL NIL'
            b' NIL NIL) ("text" "plain" ("charset" "us-ascii") NIL NIL'
            b' "7bit" 12 1 NIL NIL NIL NIL) 4 NIL NIL NIL NIL)'
        ),
        (
            b'("message" "rfc822" NIL NIL NIL "7bit" 55 (NIL "inner" ('
            b'(NIL NIL "inner" "example.com")) ((NIL NIL "inner" "exam'
            b'ple.com")) ((NIL NIL "inner" "example.com")) NIL NIL NIL'
            b' NIL NIL) ("text" "plain" ("charset" "us-ascii") NIL NIL'
            b' "7bit" 12 1) 4)'
        ),
        (
            b'(NIL NIL ((NIL NIL "outer" "example.com")) ((NIL NIL "ou'
            b'ter" "example.com")) ((NIL NIL "outer" "example.com")) N'
            b"IL NIL NIL NIL NIL)"
        ),
    ),
    "digest": (
        (
            b'(("message" "rfc822" NIL NIL NIL "7bit" 44 (NIL "one" (('
            b'NIL NIL "one" "example.com")) ((NIL NIL "one" "example.c'
            b'om")) ((NIL NIL "one" "example.com")) NIL NIL NIL NIL NI'
            b'L) ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit"'
            b' 5 0 NIL NIL NIL NIL) 3 NIL NIL NIL NIL)("text" "plain" '
            b'("charset" "us-ascii") NIL NIL "7bit" 6 0 NIL NIL NIL NI'
            b'L) "digest" ("boundary" "d") NIL NIL NIL)'
        ),
        (
            b'(("message" "rfc822" NIL NIL NIL "7bit" 44 (NIL "one" (('
            b'NIL NIL "one" "example.com")) ((NIL NIL "one" "example.c'
            b'om")) ((NIL NIL "one" "example.com")) NIL NIL NIL NIL NI'
            b'L) ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit"'
            b' 5 0) 3)("text" "plain" ("charset" "us-ascii") NIL NIL "'
            b'7bit" 6 0) "digest")'
        ),
        (b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"),
    ),
    "addresses": (
        (b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 6 1 NIL NIL NIL NIL)'),
        (b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 6 1)'),
        (
            b'("Mon, 1 Jan 2024 00:00:00 +0000" NIL ((NIL "@a.example,'
            b'@b.example" "joe" "c.example")) ((NIL NIL "john doe" "ex'
            b'ample.com")) (({7}\r\na "b" c NIL "x" "y.example")) ((NIL '
            b'NIL "MISSING_MAILBOX" "MISSING_DOMAIN")(NIL NIL "Group" '
            b'NIL)(NIL NIL NIL NIL)(NIL NIL "Other" NIL)(NIL NIL "q" "'
            b'r.example")(NIL NIL NIL NIL)) (("John Smith" NIL "js" "e'
            b'xample.com")(NIL NIL "empty" "example.com")) ((NIL NIL "'
            b'broken" "MISSING_DOMAIN")) "<a@b> <c@d>" "<id@x>")'
        ),
    ),
    "headeronly": (
        (b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0 NIL NIL NIL NIL)'),
        (b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0)'),
        (
            b'(NIL "no body" ((NIL NIL "x" "y.example")) ((NIL NIL "x"'
            b' "y.example")) ((NIL NIL "x" "y.example")) NIL NIL NIL N'
            b"IL NIL)"
        ),
    ),
    "emptyparthdr": (
        (
            b'(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 1'
            b'4 0 NIL NIL NIL NIL)("text" "plain" ("charset" "utf-8") '
            b'NIL NIL "7bit" 7 1 NIL NIL NIL NIL) "mixed" ("boundary" '
            b'"e") NIL NIL NIL)'
        ),
        (
            b'(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 1'
            b'4 0)("text" "plain" ("charset" "utf-8") NIL NIL "7bit" 7'
            b' 1) "mixed")'
        ),
        (b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"),
    ),
    "q1": (
        (b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 3 1 NIL NIL NIL NIL)'),
        (b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 3 1)'),
        (
            b'(NIL {11}\r\none " quote (({5}\r\nx \\ y NIL "a" "b.c")) (({5'
            b'}\r\nx \\ y NIL "a" "b.c")) (({5}\r\nx \\ y NIL "a" "b.c")) NI'
            b"L NIL NIL NIL NIL)"
        ),
    ),
    "q2": (
        (b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 3 1 NIL NIL NIL NIL)'),
        (b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 3 1)'),
        (
            b'(NIL {6}\r\na \\\\ b (({5}\r\nx " y NIL "a" "b.c")) (({5}\r\nx "'
            b' y NIL "a" "b.c")) (({5}\r\nx " y NIL "a" "b.c")) NIL NIL '
            b"NIL NIL NIL)"
        ),
    ),
    "q5": (
        (b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 3 1 NIL NIL NIL NIL)'),
        (b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 3 1)'),
        (
            b'(NIL {5}\r\n""""" (({6}\r\nx "" y NIL "a" "b.c")) (({6}\r\nx "'
            b'" y NIL "a" "b.c")) (({6}\r\nx "" y NIL "a" "b.c")) NIL NI'
            b"L NIL NIL NIL)"
        ),
    ),
    "q4": (
        (b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 3 1 NIL NIL NIL NIL)'),
        (b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 3 1)'),
        (b'(NIL {4}\r\n"""" NIL NIL NIL NIL NIL NIL NIL NIL)'),
    ),
    "p7a": (
        (
            b'("text" "plain" ("charset" "us-ascii" "format" "flowed")'
            b' NIL NIL "7bit" 3 1 NIL NIL NIL NIL)'
        ),
        (b'("text" "plain" ("charset" "us-ascii" "format" "flowed") NIL NIL "7bit" 3 1)'),
        (b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"),
    ),
    "p7b": (
        (
            b'("text" "plain" ("format" "flowed" "charset" "us-ascii")'
            b' NIL NIL "7bit" 3 1 NIL NIL NIL NIL)'
        ),
        (b'("text" "plain" ("format" "flowed" "charset" "us-ascii") NIL NIL "7bit" 3 1)'),
        (b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"),
    ),
    "cid": (
        (b'("text" "plain" ("charset" "us-ascii") " <folded@x>" NIL "7bit" 3 1 NIL NIL NIL NIL)'),
        (b'("text" "plain" ("charset" "us-ascii") " <folded@x>" NIL "7bit" 3 1)'),
        (b'(NIL {3}\r\na b NIL NIL NIL NIL ((NIL NIL "x" "y")) NIL NIL NIL)'),
    ),
    "comment": (
        (b'("text" "plain" ("charset" "utf-8") NIL NIL "Quoted-Printable" 3 1 NIL NIL NIL NIL)'),
        (b'("text" "plain" ("charset" "utf-8") NIL NIL "Quoted-Printable" 3 1)'),
        (b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"),
    ),
    "noslash": (
        (b'("text" "" ("charset" "us-ascii") NIL NIL "7bit" 3 1 NIL NIL NIL NIL)'),
        (b'("text" "" ("charset" "us-ascii") NIL NIL "7bit" 3 1)'),
        (b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"),
    ),
    "html": (
        (b'("text" "html" ("charset" "UTF-8") NIL NIL "7bit" 10 1 NIL NIL NIL NIL)'),
        (b'("text" "html" ("charset" "UTF-8") NIL NIL "7bit" 10 1)'),
        (b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"),
    ),
    "addr2": (
        (b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 3 1 NIL NIL NIL NIL)'),
        (b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 3 1)'),
        (
            b'("Mon, 1 Jan 2024 00:00:00 +0000" NIL (("Name" NIL "a" "'
            b'b.c")("two" NIL "x" "y.z")) (("Name" NIL "a" "b.c")("two'
            b'" NIL "x" "y.z")) (("Name" NIL "a" "b.c")("two" NIL "x" '
            b'"y.z")) ((NIL NIL "a" "b.c")(NIL NIL "MISSING_MAILBOX" "'
            b'MISSING_DOMAIN")(NIL NIL "d" "e.f")) ((NIL NIL "a" "b.c"'
            b')) ((NIL NIL "a" "b.c")(NIL NIL "a" "b.c")(NIL NIL "a.b"'
            b' "c.d")) NIL NIL)'
        ),
    ),
    "delimws": (
        (
            b'(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 3'
            b' 0 NIL NIL NIL NIL)("text" "plain" ("charset" "us-ascii"'
            b') NIL NIL "7bit" 0 0 NIL NIL NIL NIL) "mixed" ("boundary'
            b'" "b") NIL NIL NIL)'
        ),
        (
            b'(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 3'
            b' 0)("text" "plain" ("charset" "us-ascii") NIL NIL "7bit"'
            b' 0 0) "mixed")'
        ),
        (b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"),
    ),
    "8bitparam": (
        (
            b'("application" "pdf" ("name" {9}\r\ncaf\xc3\xa9.pdf) NIL NIL "7b'
            b'it" 3 NIL ("attachment" ("filename*" "utf-8\'\'caf%C3%A9.p'
            b'df")) NIL NIL)'
        ),
        (b'("application" "pdf" ("name" {9}\r\ncaf\xc3\xa9.pdf) NIL NIL "7bit" 3)'),
        (b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"),
    ),
    "emptysubj": (
        (b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 3 1 NIL NIL NIL NIL)'),
        (b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 3 1)'),
        (
            b'(NIL "" NIL NIL NIL ((NIL NIL "undisclosed-recipients" N'
            b'IL)(NIL NIL NIL NIL)) NIL NIL NIL "")'
        ),
    ),
    "lang": (
        (
            b'("text" "plain" ("charset" "us-ascii") NIL "=?utf-8?q?d='
            b'C3=A9?=" "7bit" 3 1 "abc" ("inline" ("filename" "a.txt")'
            b') ("en-US") NIL)'
        ),
        (b'("text" "plain" ("charset" "us-ascii") NIL "=?utf-8?q?d=C3=A9?=" "7bit" 3 1)'),
        (b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"),
    ),
    "subject_spaces": (
        (b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 3 1 NIL NIL NIL NIL)'),
        (b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 3 1)'),
        (
            b'(NIL {18}\r\ntwo spaces and tab ((NIL NIL "a" "b.c")) ((NI'
            b'L NIL "a" "b.c")) ((NIL NIL "a" "b.c")) NIL NIL NIL NIL '
            b"NIL)"
        ),
    ),
}


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_structure_and_envelope_match_dovecot(name: str) -> None:
    message = ParsedMessage.parse(SAMPLES[name])
    bodystructure, body, envelope = DOVECOT[name]
    assert message.body_structure(extended=True) == bodystructure
    assert message.body_structure(extended=False) == body
    assert message.envelope() == envelope


def test_size_is_the_octet_count() -> None:
    assert ParsedMessage.parse(MIXED).size == len(MIXED)


def test_lf_only_sizes_count_stored_octets() -> None:
    # Dovecot counts a bare LF as CRLF (13 here); courriel serves stored octets as they
    # are, so it counts what it serves.
    structure = ParsedMessage.parse(LF_ONLY).body_structure(extended=False)
    assert structure == b'(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 11 1) "mixed")'


def test_empty_message() -> None:
    message = ParsedMessage.parse(b"")
    assert message.envelope() == b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"
    assert message.body_structure(extended=False) == (
        b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0)'
    )
    assert message.section(sec()) == b""
    assert message.section(sec(text="HEADER")) == b""
    assert message.section(sec((1,))) == b""


# -- sections (RFC 9051 §6.4.5); expected octets checked against Dovecot -------------


def test_whole_header_and_text() -> None:
    message = ParsedMessage.parse(PLAIN)
    split = PLAIN.index(b"\r\n\r\n") + 4
    assert message.section(sec()) == PLAIN
    assert message.section(sec(text="HEADER")) == PLAIN[:split]
    assert message.section(sec(text="TEXT")) == PLAIN[split:]
    assert message.section(sec((1,))) == PLAIN[split:]
    assert message.section(sec((1,), "MIME")) == PLAIN[:split]


def test_multipart_parts_exclude_the_line_break_before_a_delimiter() -> None:
    message = ParsedMessage.parse(ALTERNATIVE)
    assert message.section(sec((1,))) == b"Caf=C3=A9 du jour"
    assert message.section(sec((2,))) == "<p>Caf\u00e9</p>".encode()
    assert message.section(sec((2,), "MIME")) == b"Content-Type: text/html; charset=utf-8\r\n\r\n"
    assert message.section(sec((2, 1))) == "<p>Caf\u00e9</p>".encode()  # a leaf's part 1
    assert message.section(sec((2, 1, 1))) is None
    assert message.section(sec((3,))) is None
    assert message.section(sec((0,))) is None


def test_header_or_text_of_a_non_message_part_is_empty() -> None:
    message = ParsedMessage.parse(ALTERNATIVE)
    assert message.section(sec((1,), "HEADER")) == b""
    assert message.section(sec((1,), "TEXT")) == b""
    assert message.section(sec((1,), "HEADER.FIELDS", ("SUBJECT",))) == b""


def test_nested_message_rfc822_sections() -> None:
    message = ParsedMessage.parse(NESTED)
    inner_start = NESTED.index(b"From: Original")
    inner_split = NESTED.index(b"\r\n\r\n", inner_start) + 4
    inner_end = NESTED.index(b"\r\n--x--")  # the line break belongs to the delimiter
    assert message.section(sec((2,))) == NESTED[inner_start:inner_end]
    assert message.section(sec((2,), "MIME")) == b"Content-Type: message/rfc822\r\n\r\n"
    assert message.section(sec((2,), "HEADER")) == NESTED[inner_start:inner_split]
    assert message.section(sec((2,), "TEXT")) == NESTED[inner_split:inner_end]
    assert message.section(sec((2, 1))) == b"inner plain"
    assert message.section(sec((2, 2), "MIME")) == (
        b"Content-Type: text/html; charset=us-ascii\r\n\r\n"
    )
    assert message.section(sec((2,), "HEADER.FIELDS", ("SUBJECT", "TO"))) == (
        b"To: fwd@example.com\r\nSubject: hello\r\n\r\n"
    )
    assert message.section(sec((2, 3))) is None


def test_top_level_message_rfc822() -> None:
    message = ParsedMessage.parse(SAMPLES["rootrfc822"])
    assert (
        message.section(sec((1,)))
        == b"From: inner@example.com\r\nSubject: inner\r\n\r\ninner body\r\n"
    )
    assert message.section(sec((1,), "MIME")) == (
        b"From: outer@example.com\r\nContent-Type: message/rfc822\r\n\r\n"
    )
    assert (
        message.section(sec((1,), "HEADER")) == b"From: inner@example.com\r\nSubject: inner\r\n\r\n"
    )
    assert message.section(sec((1,), "TEXT")) == b"inner body\r\n"
    assert message.section(sec((1, 1))) == b"inner body\r\n"


def test_header_fields_keep_folding_and_order() -> None:
    message = ParsedMessage.parse(ODD)
    assert message.section(sec(text="HEADER.FIELDS", fields=("X-FOLDED", "SUBJECT"))) == (
        b"Subject: caf\xc3\xa9 8-bit\r\nX-Folded: first\r\n second\r\n\r\n"
    )
    assert message.section(sec(text="HEADER.FIELDS", fields=("NOPE",))) == b"\r\n"
    not_fields = message.section(
        sec(text="HEADER.FIELDS.NOT", fields=("FROM", "TO", "CONTENT-TYPE", "X-FOLDED"))
    )
    assert not_fields == (
        b"Subject: caf\xc3\xa9 8-bit\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\n"
    )


def test_part_without_header_and_message_without_body() -> None:
    message = ParsedMessage.parse(SAMPLES["emptyparthdr"])
    assert message.section(sec((1,), "MIME")) == b"\r\n"
    assert message.section(sec((1,))) == b"no header part"
    assert message.section(sec((2,))) == b"body2\r\n"
    headeronly = ParsedMessage.parse(SAMPLES["headeronly"])
    assert headeronly.section(sec(text="TEXT")) == b""
    assert headeronly.section(sec(text="HEADER")) == SAMPLES["headeronly"]


def test_unterminated_multipart_runs_to_the_end() -> None:
    data = crlf("Content-Type: multipart/mixed; boundary=u\n\n--u\n\nlast part\n")
    message = ParsedMessage.parse(data)
    assert message.section(sec((1,))) == b"last part\r\n"


def test_nested_boundaries_bound_inner_parts() -> None:
    data = crlf(
        "Content-Type: multipart/mixed; boundary=a\n\n--a\n"
        "Content-Type: multipart/alternative; boundary=b\n\n--b\n\ninner\n--b--\n"
        "--a\n\nsecond\n--a--\n"
    )
    message = ParsedMessage.parse(data)
    assert message.section(sec((1, 1))) == b"inner"
    assert message.section(sec((2,))) == b"second"


# -- BINARY (RFC 3516) ------------------------------------------------------------------


def test_binary_decodes_base64_and_quoted_printable() -> None:
    message = ParsedMessage.parse(MIXED)
    assert message.binary((2,)) == b"%PDF-1.4 fake but binary \x00\xff" * 4
    assert message.binary((1,)) == b"Thanks for your order."
    alternative = ParsedMessage.parse(ALTERNATIVE)
    assert alternative.binary((1,)) == "Caf\u00e9 du jour".encode()
    assert alternative.binary((9,)) is None
    assert alternative.binary(()) == ALTERNATIVE


def test_binary_of_multipart_and_message_parts_is_stored_octets() -> None:
    message = ParsedMessage.parse(NESTED)
    assert message.binary((2,)) == message.section(sec((2,)))
    assert message.binary((2, 1)) == b"inner plain"


def test_binary_unknown_cte_raises_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="unknown-cte"):
        ParsedMessage.parse(ODD).binary((1,))


def test_binary_tolerates_broken_base64() -> None:
    data = crlf("MIME-Version: 1.0\nContent-Transfer-Encoding: base64\n\naGVsbG8*!gd29ybGQ\n")
    assert ParsedMessage.parse(data).binary((1,)) == b"hello world"


def test_content_fields_of_a_non_mime_message_are_ignored() -> None:
    # RFC 2045 §4: without MIME-Version (or Content-Type) the body is plain text.
    data = crlf("Content-Transfer-Encoding: base64\n\naGVsbG8=\n")
    assert ParsedMessage.parse(data).binary((1,)) == b"aGVsbG8=\r\n"


# -- SEARCH helpers --------------------------------------------------------------------


def test_header_values_are_unfolded_and_decoded() -> None:
    message = ParsedMessage.parse(ALTERNATIVE)
    assert message.header_values("subject") == ["Caf\u00e9 menu"]
    assert message.header_values("SUBJECT") == ["Caf\u00e9 menu"]
    assert message.header_values("x-missing") == []
    odd = ParsedMessage.parse(ODD)
    assert odd.header_values("X-Folded") == ["first second"]
    assert odd.header_values("subject") == ["caf\u00e9 8-bit"]
    assert odd.header_values("from")[0].startswith("J\u00f6rg <jorg@")


def test_decode_words() -> None:
    assert decode_words("=?utf-8?b?w6k=?= =?utf-8?q?t=C3=A9?=") == "\u00e9t\u00e9"
    assert decode_words("a =?x-unknown?q?b_c?= d") == "a b c d"
    assert decode_words("=?utf-8?q?bad") == "=?utf-8?q?bad"


def test_sent_date_uses_the_fields_own_zone() -> None:
    assert ParsedMessage.parse(PLAIN).sent_date() == __import__("datetime").date(1994, 2, 7)
    assert ParsedMessage.parse(ODD).sent_date() is None
    bad = crlf("Date: not a date at all\n\nx\n")
    assert ParsedMessage.parse(bad).sent_date() is None
    impossible = crlf("Date: 31 Feb 2024 10:00:00 +0000\n\nx\n")
    assert ParsedMessage.parse(impossible).sent_date() is None


def test_contains_text_decodes_bodies() -> None:
    alternative = ParsedMessage.parse(ALTERNATIVE)
    assert alternative.contains_text("CAF\u00c9 DU", include_headers=False)
    assert not alternative.contains_text("menu", include_headers=False)
    assert alternative.contains_text("caf\u00e9 menu", include_headers=True)
    assert alternative.contains_text("", include_headers=False)
    mixed = ParsedMessage.parse(MIXED)
    assert not mixed.contains_text("PDF-1.4", include_headers=False)  # not a text part
    assert mixed.contains_text("thanks", include_headers=False)
    nested = ParsedMessage.parse(NESTED)
    assert nested.contains_text("inner html", include_headers=False)
    assert nested.contains_text("orig@example.org", include_headers=True)
    assert not nested.contains_text("orig@example.org", include_headers=False)


def test_contains_text_charsets() -> None:
    latin = (
        b"Content-Type: text/plain; charset=iso-8859-1\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\nd=E9j=E0 vu\r\n"
    )
    assert ParsedMessage.parse(latin).contains_text("D\u00c9J\u00c0", include_headers=False)
    unknown = b"Content-Type: text/plain; charset=x-nope\r\n\r\nplain words\r\n"
    assert ParsedMessage.parse(unknown).contains_text("words", include_headers=False)


def test_envelope_subject_is_cleaned_for_humans_like_dovecot() -> None:
    envelope = ParsedMessage.parse(SAMPLES["subject_spaces"]).envelope()
    assert envelope.startswith(b"(NIL {18}\r\ntwo spaces and tab (")
    folded = ParsedMessage.parse(SAMPLES["cid"]).envelope()
    assert folded.startswith(b"(NIL {3}\r\na b NIL")


def test_empty_address_list_element_is_a_missing_mailbox() -> None:
    envelope = ParsedMessage.parse(SAMPLES["addr2"]).envelope()
    assert b'(NIL NIL "MISSING_MAILBOX" "MISSING_DOMAIN")' in envelope


def test_content_type_without_subtype() -> None:
    structure = ParsedMessage.parse(SAMPLES["noslash"]).body_structure(extended=False)
    assert structure == b'("text" "" ("charset" "us-ascii") NIL NIL "7bit" 3 1)'


def test_rfc2231_continuations_are_merged() -> None:
    structure = ParsedMessage.parse(SAMPLES["mixedcase"]).body_structure(extended=False)
    assert b'("Name" "longname.bin")' in structure
    assert b'("name*" "utf-8\'\'%E2%82%AC.pdf")' in structure
