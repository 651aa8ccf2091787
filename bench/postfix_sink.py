"""A private Postfix instance on loopback for ``bench/smtp_receive.py`` (Debian's package).

It is :class:`courriel.testing.postfix.PostfixMx` (own folder, ``postfix -c DIR``,
loopback only, no DNS, never the system instance) listening on ``127.0.0.1:PORT``; the
virtual mailbox domain ``bench.test`` has one mailbox, ``user@bench.test``, delivered by
virtual(8) to a Maildir under the folder. It also runs the ``smtp`` and ``relay`` services
(``_postfix_relay.py`` relays through them) and trusts all of 127.0.0.0/8.

Postfix answers 250 at the end of DATA only after cleanup(8) has fsynced the queue file,
which is the durable point comparable to courriel's commit. Everything else is left at
Postfix's defaults, including ``in_flow_delay`` (its flow control), on purpose.

Invariants: as ``courriel.testing.postfix``: start and stop only with
``postfix -c DIR start|stop``, a started instance is always stopped (context manager), and
starting needs root.

Usage by hand::

    python bench/postfix_sink.py /tmp/pf 2526 start   # ... then: stop
"""

from __future__ import annotations

import sys
from pathlib import Path

from courriel.testing.postfix import POSTFIX, PostfixMx, postfix_available

__all__ = ["POSTFIX", "PostfixSink", "available"]


def available() -> bool:
    """True when Debian's postfix is installed and we may start it (root)."""
    return not postfix_available()


class PostfixSink(PostfixMx):
    """One private Postfix instance in ``root``, listening on ``127.0.0.1:port``.

    Messages land in the Maildir of mailbox ``user``: ``len(sink.delivered("user"))``.
    """

    extra_services = """\
local      unix  - n n - - local
smtp       unix  - - n - - smtp
relay      unix  - - n - - smtp
"""

    def __init__(self, root: Path, port: int, *, processes: int = 100) -> None:
        super().__init__(
            root,
            host="127.0.0.1",
            port=port,
            domain="bench.test",
            mailboxes={"user": "user"},
            hostname="postfix.bench.localhost",
        )
        self.processes = max(processes, 100)

    def settings(self) -> dict[str, object]:
        """The common settings, with room for every benchmark client."""
        settings = super().settings()
        settings.update(mynetworks="127.0.0.0/8", default_process_limit=str(self.processes))
        return settings


def main(argv: list[str]) -> None:
    """``postfix_sink.py DIR PORT start|stop``: run the private instance by hand."""
    if len(argv) != 3 or argv[2] not in ("start", "stop"):
        sys.exit("usage: postfix_sink.py DIR PORT start|stop")
    sink = PostfixSink(Path(argv[0]).absolute(), int(argv[1]))
    if argv[2] == "start":
        sink.start()
        print(f"postfix listening on 127.0.0.1:{sink.port}; log in {sink.log}")
    else:
        sink.started = True
        sink.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
